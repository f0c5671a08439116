"""The learned half of the local classifier: a linear model over the rules' evidence and hashed words.

    decide(analysis) -> LocalClassification

The rules (local.py) read the prompt first: they split the instruction from pasted material,
normalise it and score each task type. A multinomial logistic regression then takes those scores
(dense features) and the instruction's hashed word unigrams, bigrams, sentence-head words and
character 4-grams (features.py) and gives a probability per task type. The label is the
LOW/MEDIUM/HIGH with the largest summed probability, the task type the likeliest one of that label.

Confidence is the label probability mapped through an isotonic calibration table fitted on
out-of-fold predictions (train.py), so 0.9 means "right about 9 times in 10" on the training corpora;
but it is capped at 0.55 (below the default hybrid threshold, so `hybrid` asks the llm) unless the
rules agree with the label and are themselves sure (their confidence >= 0.6). The rules were tuned
on the same tune part the calibration reads, so there the model looks better than it is on unseen
text, while the rules' own confidence held up on unseen text (before issue 15: accuracy 0.96-0.97
above 0.6 on both blind parts).
HIGH lean: a non-HIGH answer with P(HIGH) >= 0.1 becomes HIGH (low confidence): sending a HIGH task
low costs more than the reverse. Safety hedge: a LOW or HIGH answer whose opposite extreme still has
probability >= `hedge` becomes MEDIUM (the likeliest MEDIUM type) with confidence <= 0.35, except a HIGH
answer whose P(LOW) is below 0.45 (HIGH_KEEP): it stays HIGH with confidence <= 0.55, since demoting it
turns a HIGH task into a miss while keeping it costs at most a dearer tier (issue 15, third round).
Sixth round, both out of fold on the taxonomy writers' prompts (crossval.py): a weak HIGH answer
(P(HIGH) < 0.5, HIGH_DIFFUSE) against the rules' LOW or with no rule evidence is hedged to MEDIUM
(probability spread over many types, mostly text in other languages, read HIGH: LOW->HIGH 15 -> 8 on
writers K-N); a LOW answer against the rules' HIGH is hedged to MEDIUM, but a HIGH answer against the
rules' LOW is kept (hedging it too cost 0.05-0.09 HIGH recall: the model is right there more often).
Input with no letter or digit keeps the rules' default, and with no rule evidence the confidence is
at most 0.35, whatever the model says.

The weights ship in the package (classify/model.bin, written by `python -m tiercli.classify.train`):
a JSON header (classes, dense weights, per-class scales, calibration) and a zlib block of the kept
hash buckets (uint32) with their int8 weights. Pure Python inference; the file is read once, on the
first decision (a few ms). Without the file the rules decide alone.
"""

from __future__ import annotations

import json
import math
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tiercli.classify import features
from tiercli.classify.result import LocalClassification, RuleAnalysis
from tiercli.taxonomy import LABEL_OF_TASK_TYPE, LABELS

MODEL_FILE = Path(__file__).with_name("model.bin")
MAGIC = b"TIERCLS1"
HEDGE_CONF = 0.35
HIGH_LEAN = 0.1  # P(HIGH) at which a non-HIGH answer becomes HIGH (crossval.py on the blind tune part, out of fold)
HIGH_KEEP = 0.45  # a HIGH answer is hedged to MEDIUM only when P(LOW) >= this (crossval.py --high-keep, out of fold)
HIGH_DIFFUSE = 0.5  # a HIGH answer below this, against the rules' LOW or no rule evidence, is hedged to MEDIUM (crossval.py)
RULES_SURE = 0.6  # the rules' own confidence above which they vouch for an answer
UNSURE_CAP = 0.55  # confidence when the rules are unsure or disagree: below the default hybrid threshold


def dense_features(a: "RuleAnalysis") -> dict[str, float]:
    """The rules' view as dense inputs of the linear model."""
    out = {f"R:{t}": math.log1p(max(0.0, v)) for t, v in a.scores.items()}
    out[f"T:{a.result.task_type}"] = 1.0
    out[f"L:{a.result.label}"] = 1.0
    out["rconf"] = a.result.confidence
    if a.fallback:
        out["fallback"] = 1.0
    if a.paste_lines:
        out["paste"] = 1.0
        out["paste_log"] = math.log1p(a.paste_lines) / 5.0
    for w, t, why in a.evidence:
        if "pasted" in why:
            out[f"P:{t}"] = out.get(f"P:{t}", 0.0) + w
    return out


def sparse_features(a: "RuleAnalysis") -> list[int]:
    return features.fast_buckets(a.normed)


@dataclass
class Model:
    classes: tuple[str, ...]
    bias: list[float]
    dense: dict[str, list[float]]
    scales: list[float]
    index: dict[int, int]  # bucket -> row
    q: array  # int8 weights, len(index) * len(classes)
    calib_x: list[float]
    calib_y: list[float]
    hedge: float
    meta: dict = field(default_factory=dict)
    rows: dict[int, int] | None = None  # bucket -> its int8 weights packed (_pack), 0 when not in the model

    def probabilities(self, dense: dict[str, float], buckets: list[int]) -> list[float]:
        k = len(self.classes)
        z = list(self.bias)
        for name, v in dense.items():
            w = self.dense.get(name)
            if w is not None and v:
                z = [a + v * b for a, b in zip(z, w)]
        table = self.rows
        if table is None:
            table = self.rows = {}
        got: list[int | None] = list(map(table.get, buckets))
        if None in got:  # filled lazily: the first decision stays cheap
            for pos, b in enumerate(buckets):
                if got[pos] is None:
                    i = self.index.get(b)
                    got[pos] = table[b] = 0 if i is None else _pack(self.q[i * k:(i + 1) * k])
        n = len(got) - got.count(0)
        if n:
            packed: int = sum(got)  # type: ignore[arg-type]  # no None left; all columns summed at once (_pack)
            sums = [((packed >> (_FIELD_BITS * j)) & _FIELD_MASK) - _OFFSET * n for j in range(k)]
            z = [a + s * c for a, s, c in zip(z, sums, self.scales)]
        top = max(z)
        e = [math.exp(v - top) for v in z]
        total = sum(e)
        return [v / total for v in e]

    def calibrate(self, raw: float) -> float:
        xs, ys = self.calib_x, self.calib_y
        if not xs:
            return raw
        if raw <= xs[0]:
            return ys[0]
        if raw >= xs[-1]:
            return ys[-1]
        lo, hi = 0, len(xs) - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if xs[mid] <= raw:
                lo = mid
            else:
                hi = mid
        span = xs[hi] - xs[lo]
        t = (raw - xs[lo]) / span if span else 0.0
        return ys[lo] + t * (ys[hi] - ys[lo])


_OFFSET = 128  # int8 weights are in -127..127 (train.quantized), so weight + 128 is in 1..255
_FIELD_BITS = 32  # one field per class: a sum of up to 16 million rows of 1..255 cannot spill into the next
_FIELD_MASK = (1 << _FIELD_BITS) - 1


def _pack(row) -> int:
    """A bucket's int8 weights as one integer, class j in bits 32j..32j+31 (weight + 128, never 0), so the
    weights of many buckets are summed by one `sum` of integers; exactly the per-class integer sums."""
    packed = 0
    for j, v in enumerate(row):
        packed |= (v + _OFFSET) << (_FIELD_BITS * j)
    return packed


def read(path: Path) -> Model:
    import zlib

    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError(f"{path} is not a tier classifier model")
    hlen = int.from_bytes(data[8:12], "little")
    header = json.loads(data[12:12 + hlen].decode("utf-8"))
    body = zlib.decompress(data[12 + hlen:])
    n, k = header["n_buckets"], len(header["classes"])
    ids = array("I")
    ids.frombytes(body[: 4 * n])
    if sys.byteorder != "little":
        ids.byteswap()
    q = array("b")
    q.frombytes(body[4 * n: 4 * n + n * k])
    return Model(tuple(header["classes"]), header["bias"], header["dense"], header["scales"],
                 dict(zip(ids, range(n))), q, header["calib_x"], header["calib_y"], header["hedge"],
                 header.get("meta", {}))


def write(path: Path, header: dict, ids: list[int], q: list[int]) -> None:
    import zlib

    a_ids = array("I", ids)
    if sys.byteorder != "little":
        a_ids.byteswap()
    body = zlib.compress(a_ids.tobytes() + array("b", q).tobytes(), 9)
    head = json.dumps({**header, "n_buckets": len(ids)}, sort_keys=True, separators=(",", ":")).encode("utf-8")
    path.write_bytes(MAGIC + len(head).to_bytes(4, "little") + head + body)


_LOADED: list[Model | None] = []


def shipped() -> Model | None:
    """The packaged model, read once; None when the file is absent (the rules then decide alone)."""
    if not _LOADED:
        _LOADED.append(read(MODEL_FILE) if MODEL_FILE.exists() else None)
    return _LOADED[0]


def rules_default_stands(a: "RuleAnalysis") -> bool:
    """No rule fired and the instruction has no letter or digit in any script (empty, "?", emoji, "§ § §"):
    the model is not asked, the rules' default (the configured tier2 type, confidence 0.1) stands."""
    return a.fallback and not any(ch.isalnum() for seg, _ in a.normed for ch in seg.replace("§", ""))


def label_decision(by_label: dict[str, float], a: "RuleAnalysis", calibrate: Callable[[float], float],
                   lean: float, hedge: float, keep: float = HIGH_KEEP) -> tuple[str, float, list[str]]:
    """The label and confidence from the model's per-label probabilities and the rules' answer: the HIGH
    lean, the LOW/HIGH hedges, the rules/model disagreement guard and the confidence caps (the module
    docstring says why each exists). crossval.py calls this too, so its figures are the shipped decision's."""
    label = max(LABELS, key=lambda lab: (by_label[lab], lab == "MEDIUM"))
    conf = calibrate(by_label[label])
    reasons: list[str] = []
    rules = a.result
    if label != "HIGH" and by_label["HIGH"] >= lean and by_label["LOW"] < hedge:
        reasons.append(f"HIGH probability {by_label['HIGH']:.2f} >= {lean}: leaning HIGH (a HIGH task sent "
                       f"low costs more than the reverse)")
        label = "HIGH"
        conf = min(calibrate(by_label["HIGH"]), UNSURE_CAP)
    opposite = {"LOW": "HIGH", "HIGH": "LOW"}.get(label)
    if label == "HIGH" and by_label["HIGH"] < HIGH_DIFFUSE and (rules.label == "LOW" or a.fallback):
        why = "the rules' LOW" if rules.label == "LOW" else "no rule evidence"
        reasons.append(f"HIGH probability only {by_label['HIGH']:.2f} against {why}: hedged to MEDIUM")
        label = "MEDIUM"
        conf = min(conf, HEDGE_CONF)
    elif opposite and by_label[opposite] >= hedge and label == "HIGH" and by_label["LOW"] < keep:
        reasons.append(f"LOW probability {by_label['LOW']:.2f} next to a HIGH answer (< {keep}): kept HIGH, "
                       f"confidence capped at {UNSURE_CAP}")
        conf = min(conf, UNSURE_CAP)
    elif opposite and by_label[opposite] >= hedge:
        reasons.append(f"{opposite} probability {by_label[opposite]:.2f} next to a {label} answer -> hedged to MEDIUM")
        label = "MEDIUM"
        conf = min(conf, HEDGE_CONF)
    elif rules.label == "HIGH" and label == "LOW":
        reasons.append("rules said HIGH, the model LOW: hedged to MEDIUM (a HIGH task sent to tier1 fails)")
        label = "MEDIUM"
        conf = min(conf, HEDGE_CONF)
    elif rules.label != label or rules.confidence < RULES_SURE:
        cap = HEDGE_CONF if a.fallback or rules.confidence <= HEDGE_CONF else UNSURE_CAP  # thin evidence
        if conf > cap:
            reasons.append(f"rules {'unsure' if rules.label == label else 'disagree'}: confidence capped at {cap}")
        conf = min(conf, cap)
    if a.fallback and conf > HEDGE_CONF:  # no rule fired: the model alone is thin evidence, whatever it says
        reasons.append(f"no rule evidence: confidence capped at {HEDGE_CONF}")
        conf = HEDGE_CONF
    return label, conf, reasons


def predict(m: Model, a: "RuleAnalysis") -> "LocalClassification":
    if rules_default_stands(a):
        return a.result
    probs = m.probabilities(dense_features(a), sparse_features(a))
    by_type = dict(zip(m.classes, probs))
    by_label = {lab: 0.0 for lab in LABELS}
    for t, p in by_type.items():
        by_label[LABEL_OF_TASK_TYPE[t]] += p
    label, conf, reasons = label_decision(by_label, a, m.calibrate, HIGH_LEAN, m.hedge)
    rules = a.result
    task_type = max((t for t in m.classes if LABEL_OF_TASK_TYPE[t] == label), key=lambda t: by_type[t])
    shown = ", ".join(f"{lab} {by_label[lab]:.2f}" for lab in LABELS)
    lead = f"model: {task_type} ({shown})"
    if rules.task_type == task_type:
        kept = [r for r in rules.reasons if "hedged" not in r and "close behind" not in r][:4]
        reasons = [lead, *kept, *reasons]
    else:
        reasons = [lead, f"rules said {rules.task_type}/{rules.label}", *reasons]
    return LocalClassification(task_type, label, round(max(0.0, min(1.0, conf)), 3), tuple(reasons))


def decide(a: "RuleAnalysis") -> "LocalClassification":
    m = shipped()
    return a.result if m is None else predict(m, a)
