import XCTest
import FineGrain
import FineGrainConformance

/// Runs every loss / KL / aggregation / statistics golden file of `shared/golden/verl` and asserts PASS.
final class LossGoldenTests: XCTestCase {
    func golden(_ stem: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try assertGoldenPasses("verl", stem, file: file, line: line)
    }

    func testLossVanilla() throws { try golden("policy_loss_vanilla.json") }
    func testLossGSPO() throws { try golden("policy_loss_gspo.json") }
    func testLossGPG() throws { try golden("policy_loss_gpg.json") }
    func testLossClipCov() throws { try golden("policy_loss_clip_cov.json") }
    func testLossKLCov() throws { try golden("policy_loss_kl_cov.json") }
    func testLossSAPO() throws { try golden("policy_loss_sapo.json") }
    func testLossCISPO() throws { try golden("policy_loss_cispo.json") }
    func testLossDPPOTV() throws { try golden("policy_loss_dppo_tv.json") }
    func testLossDPPOKL() throws { try golden("policy_loss_dppo_kl.json") }
    func testLossGeoMean() throws { try golden("policy_loss_geo_mean.json") }
    func testLossDRO() throws { try golden("policy_loss_dro.json") }
    func testLossReinforce() throws { try golden("policy_loss_reinforce.json") }
    func testLossValue() throws { try golden("value_loss.json") }
    func testLossKLPenalty() throws { try golden("kl_penalty.json") }
    func testLossAggregation() throws { try golden("agg_loss.json") }
    func testLossMaskedMean() throws { try golden("masked_mean.json") }
    func testLossMaskedSum() throws { try golden("masked_sum.json") }
    func testLossMaskedVar() throws { try golden("masked_var.json") }
    func testLossMaskedWhiten() throws { try golden("masked_whiten.json") }
    func testLossEntropyFromLogits() throws { try golden("entropy_from_logits.json") }
}
