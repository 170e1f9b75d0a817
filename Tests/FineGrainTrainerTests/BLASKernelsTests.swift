@testable import FineGrainTrainer
import XCTest

/// The kernel-family choice of `BLASKernels`: upgrade only from a weak family, only to what the flags allow.
final class BLASKernelsTests: XCTestCase {
    func testChoiceFollowsTheFlags() {
        let avx512: Set = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]
        let avx2: Set = ["sse3", "avx", "avx2", "fma"]
        XCTAssertEqual(BLASKernels.betterCore(current: "Prescott", cpuFlags: avx512), "SkylakeX")
        XCTAssertEqual(BLASKernels.betterCore(current: "Prescott", cpuFlags: avx2), "Haswell")
        XCTAssertEqual(BLASKernels.betterCore(current: "Sandybridge", cpuFlags: avx2), "Haswell")
        XCTAssertNil(BLASKernels.betterCore(current: "Prescott", cpuFlags: ["sse3", "avx"]), "no AVX2: keep")
        XCTAssertNil(BLASKernels.betterCore(current: "Haswell", cpuFlags: avx512), "a good family is kept")
        XCTAssertNil(BLASKernels.betterCore(current: "Zen", cpuFlags: avx2))
        XCTAssertNil(BLASKernels.betterCore(current: "SkylakeX", cpuFlags: avx512))
    }

    func testFlagsAreReadFromCpuinfo() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse3 avx2 fma avx512f\nbugs\t: x\nflags\t: other\n"
        XCTAssertEqual(BLASKernels.cpuFlags(cpuinfo: text), ["fpu", "sse3", "avx2", "fma", "avx512f"])
        XCTAssertEqual(BLASKernels.cpuFlags(cpuinfo: nil), [])
        print("BLAS kernels: OpenBLAS chose \(BLASKernels.coreName) in this process; CPU flags suggest "
              + (BLASKernels.betterCore(current: BLASKernels.coreName, cpuFlags: BLASKernels.cpuFlags()) ?? "keeping it"))
    }
}
