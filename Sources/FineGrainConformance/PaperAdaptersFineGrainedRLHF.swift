import FineGrain

/// Conformance adapters for Fine-Grained RLHF (golden/papers/fg_rlhf_*.json, reference allenai/FineGrainedRLHF).
/// The pipeline adapter keeps the padding as mask-0 tokens (the reference's unmasked GAE reads it), merges the
/// two models' segment ends into the step layout with the reference's clipping, and runs the estimator through
/// the registry with `reference_compatible`.
let fineGrainedRLHFAdapters: [ConformanceAdapter] = [
    ConformanceAdapter("FineGrainedReward.get_reward + BasicReward.kl_penalize_reward + PPOTrainer.compute_advantages") { c in
        let mask = try c.matrix("mask")
        var batch = try VerlLayout.batch(responseMask: mask, groups: nil, trimTrailingPadding: false)
        let width = mask.first?.count ?? 0
        func ragged(_ key: String) throws -> [[JSONValue]] {
            guard let a = c.inputs[key]?.arrayValue else { throw FineGrainError.missingField(field: key, method: c.id) }
            return try a.map { guard let r = $0.arrayValue else { throw FineGrainError.invalidField(field: key, reason: "expected rows") }; return r }
        }
        let sub = try ragged("subsentence_ends"), sent = try ragged("sentence_ends")
        let relL = try ragged("relevance_logits"), facL = try ragged("factuality_logits")
        var stepOffsets = [0], stepEnds = [Int](), rel = [Double](), fac = [Double]()
        for r in 0 ..< batch.count {
            let len = batch.validCount(r)
            let relLabels = try relL[r].map { try FineGrainedRLHF.relevanceLabel(try $0.doubles(field: "relevance_logits")) }
            let facLabels = try facL[r].map { try FineGrainedRLHF.factualityLabel(try $0.doubles(field: "factuality_logits")) }
            let merged = try FineGrainedRLHF.mergeSegments(
                length: len, ends: [sub[r].map { Int($0.doubleValue ?? -1) }, sent[r].map { Int($0.doubleValue ?? -1) }],
                labels: [relLabels, facLabels], clipToLength: true, fields: ["subsentence_ends", "sentence_ends"])
            stepEnds += merged.stepEnds; rel += merged.labels[0]; fac += merged.labels[1]
            stepOffsets.append(stepEnds.count)
        }
        batch.stepOffsets = stepOffsets; batch.stepEnds = stepEnds
        batch.extraStepColumns = ["step_relevance": rel, "step_factuality": fac]
        batch.outcome = try c.vector("completeness_score")
        batch.oldLogprob = try VerlLayout.ragged(try c.matrix("logprobs"), like: batch, field: "logprobs")
        batch.refLogprob = try VerlLayout.ragged(try c.matrix("ref_logprobs"), like: batch, field: "ref_logprobs")
        batch.value = try VerlLayout.ragged(try c.matrix("values"), like: batch, field: "values")
        var given = c.registryParams()
        given["reference_compatible"] = .bool(true)
        let out = try Registry.advantages(FineGrainedRLHF.info.name, batch: batch, params: given)
        let p = try Params.resolve(given, specs: FineGrainedRLHF.info.params, method: FineGrainedRLHF.info.name)
        let s = try FineGrainedRLHF.pipeline(batch, p)
        func pad(_ x: [Double]) -> JSONValue { .matrix(VerlLayout.padded(x, like: batch, width: width)) }
        func perRow(_ x: [Double]) -> JSONValue {
            .array((0 ..< batch.count).map { r in .numbers(Array(x[batch.offsets[r] ..< batch.offsets[r] + batch.validCount(r)])) })
        }
        // The reference's completeness list of an empty row still holds its one score ([0] * (L-1) + [score]).
        var comp = perRow(s.completeness)
        if case var .array(rows) = comp {
            for r in 0 ..< batch.count where batch.validCount(r) == 0 {
                rows[r] = .numbers([FineGrainedRLHF.completeness(batch.outcome![r], mean: try p.double("completeness_mean"),
                    std: try p.double("completeness_std"), scale: try p.double("completeness_scale"), bias: try p.double("completeness_bias"))])
            }
            comp = .array(rows)
        }
        let beta = try p.double("kl_coef")
        return ["verbosity_rewards": perRow(s.relevance), "factuality_rewards": perRow(s.factuality), "completeness_rewards": comp,
                "rewards_raw": pad(s.raw), "kl": pad(s.kl), "kl_penalty": pad(s.kl.map { beta * $0 }), "penalized": pad(s.penalized),
                "whitened_advantages": pad(out.advantages), "returns": pad(out.returns ?? [])]
    },
    ConformanceAdapter("whiten") { c in
        let v = try c.matrix("values"), m = try c.matrix("mask")
        var x = v.flatMap { $0 }
        let mask = m.flatMap { $0 }.map { $0 != 0 ? UInt8(1) : 0 }
        try FineGrainedRLHF.whiten(&x, mask: mask, shiftMean: c.param("shift_mean")?.boolValue ?? true, referenceQuirks: true)
        let w = v.first?.count ?? 0
        return ["whitened": .matrix((0 ..< v.count).map { Array(x[$0 * w ..< ($0 + 1) * w]) })]
    },
    ConformanceAdapter("split_text_to_subsentences / split_text_to_sentences") { c in
        guard let text = c.inputs["text"]?.stringValue else { throw FineGrainError.missingField(field: "text", method: c.id) }
        let ends = try c.vector("spacy_sentence_ends").map { Int($0) }
        let s = try FineGrainedRLHF.sentenceBoundaries(text, sentenceEnds: ends)
        let sub = try FineGrainedRLHF.subsentenceBoundaries(text, sentenceEnds: ends)
        return ["sentence_boundaries": .numbers(s.map(Double.init)), "subsentence_boundaries": .numbers(sub.map(Double.init))]
    },
]
