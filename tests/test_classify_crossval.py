"""The cross-validation tool decides exactly like the shipped model (so its figures are the model's)."""

from __future__ import annotations

from tiercli.classify import corpus, crossval, local, model


def test_decide_matches_model_predict():
    m = model.shipped()
    assert m is not None
    n = 0
    odd = ["", "?", "§ § §", "🙂🚀", "これを修正してください", "same for the other one"]
    for text in [it.text for it in corpus.blind("tune")[:150]] + odd:
        a = local.analyse(text)
        probs = m.probabilities(model.dense_features(a), model.sparse_features(a))
        label, conf = crossval.decide(probs, a, m.calibrate, model.HIGH_LEAN, m.hedge)
        shipped = model.predict(m, a)
        assert (label, round(max(0.0, min(1.0, conf)), 3)) == (shipped.label, shipped.confidence), text
        n += 1
    assert n == 150 + len(odd)


def test_written_items_are_training_only_and_labelled_by_the_taxonomy():
    from tiercli.taxonomy import LABEL_OF_TASK_TYPE

    written = corpus.written()
    assert written, "tests/data/tasks_families_written.jsonl"
    assert all(it.label == LABEL_OF_TASK_TYPE[it.task_type] for it in written)
    ids = {it.id for it in corpus.training_items()}
    assert {it.id for it in written} <= ids
    assert not any(it.source == "blind-holdout" for it in corpus.training_items())


def test_worth_listing_names_crossings_and_near_misses():
    from tiercli.taxonomy import LABEL_OF_TASK_TYPE, TASK_TYPES

    def probs(**by_type: float) -> list[float]:
        return [by_type.get(t, 0.0) for t in TASK_TYPES]

    high_type = next(t for t in TASK_TYPES if LABEL_OF_TASK_TYPE[t] == "HIGH")
    low_type = next(t for t in TASK_TYPES if LABEL_OF_TASK_TYPE[t] == "LOW")
    assert crossval.worth_listing("LOW", "HIGH", probs(**{high_type: 0.9, low_type: 0.1}))
    assert crossval.worth_listing("LOW", "LOW", probs(**{high_type: 0.06, low_type: 0.94}))  # near miss
    assert not crossval.worth_listing("LOW", "LOW", probs(**{high_type: 0.01, low_type: 0.99}))
    assert crossval.worth_listing("HIGH", "MEDIUM", probs(**{high_type: 0.4}))  # a HIGH miss
    assert not crossval.worth_listing("HIGH", "HIGH", probs(**{high_type: 0.99, low_type: 0.01}))
    assert not crossval.worth_listing("MEDIUM", "HIGH", probs(**{high_type: 0.9}))
