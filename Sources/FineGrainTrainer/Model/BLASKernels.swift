import CBLAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Makes OpenBLAS use the sgemm kernels this CPU supports.
///
/// OpenBLAS (DYNAMIC_ARCH builds such as Debian's 0.3.21) chooses its kernel family once, when the library
/// loads, from the CPU model number. A CPU its tables do not know falls back to "Prescott" (SSE3), even
/// when the CPU has AVX-512: on this project's 2-core VM that made sgemm run at ~30 GFLOP/s instead of
/// 135-160 with the "SkylakeX" kernels, and the model 2-3x slower. The choice can only be changed before
/// the library loads (`OPENBLAS_CORETYPE`), so `reexecIfWeakCore` re-executes the process once with that
/// variable set from the CPU's feature flags. It never overrides a user's `OPENBLAS_CORETYPE`, never picks
/// a family the flags do not support, and `FINEGRAIN_BLAS_CORE=keep` turns it off.
public enum BLASKernels {
    /// The family OpenBLAS chose (`openblas_get_corename()`), e.g. "Prescott", "Haswell", "SkylakeX".
    public static var coreName: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// Families slower than what an AVX2 or AVX-512 CPU can run (OpenBLAS's names, compared lowercased).
    static let weakCores: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "sandybridge",
                                         "katmai", "coppermine", "northwood", "banias", "barcelona", "bobcat", "bulldozer",
                                         "piledriver", "steamroller", "excavator", "opteron", "opteron_sse3", "unknown"]

    /// Whether `core` is one of the SSE-only (or unknown) families: sgemm then runs at a fraction of what
    /// an AVX2 core can do, which also decides `Attention.preferTriangle`.
    public static func isWeak(_ core: String) -> Bool { weakCores.contains(core.lowercased()) }

    /// The family to ask for instead of `current`, given the CPU's `/proc/cpuinfo` flags; nil = keep `current`.
    public static func betterCore(current: String, cpuFlags: Set<String>) -> String? {
        guard weakCores.contains(current.lowercased()) else { return nil }
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(cpuFlags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(cpuFlags.contains) { return "Haswell" }
        return nil
    }

    /// The first `flags` line of `/proc/cpuinfo` as a set (empty where there is none).
    public static func cpuFlags(cpuinfo: String? = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) -> Set<String> {
        guard let line = cpuinfo?.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// Re-executes this program with `OPENBLAS_CORETYPE` set when OpenBLAS chose a weaker family than the
    /// CPU supports (see above); returns when there is nothing to do or the exec fails. Call it first in
    /// `main`, before any work: the new process image starts from scratch with the same arguments.
    public static func reexecIfWeakCore() {
        #if os(Linux)
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["FINEGRAIN_BLAS_CORE"] != "keep",
              let core = betterCore(current: coreName, cpuFlags: cpuFlags()) else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        let args = CommandLine.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        argv.append(nil)
        execv("/proc/self/exe", &argv)
        unsetenv("OPENBLAS_CORETYPE")   // exec failed: carry on with the kernels we have
        #endif
    }
}
