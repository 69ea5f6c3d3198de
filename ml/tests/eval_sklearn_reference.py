"""Reference metrics for ml/tests/eval_sklearn.rs, computed with scikit-learn.

Reads the cases written by the Rust test (JSON, path in argv[1]) and prints, per case, a JSON
object of metric name -> list of floats. Exit code 3 means scikit-learn or NumPy is missing.
"""

import json
import sys

try:
    import numpy as np
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        confusion_matrix,
        matthews_corrcoef,
        mean_absolute_error,
        mean_squared_error,
        precision_recall_fscore_support,
        r2_score,
        roc_auc_score,
        roc_curve,
        top_k_accuracy_score,
    )
    from sklearn.preprocessing import label_binarize
except ImportError as e:  # the Rust test turns this into a clear failure
    print(f"import failed: {e}", file=sys.stderr)
    sys.exit(3)


def example_rows(case, n):
    mask = case.get("mask")
    if mask is None:
        return np.ones(n, dtype=bool)
    return np.array([row[0] != 0 for row in mask])


def classification(case):
    n = case["num_classes"]
    y = np.array(case["labels"])
    s = np.array(case["scores"], dtype=np.float64)
    keep = example_rows(case, len(y))
    y, s = y[keep], s[keep]
    if s.shape[1] == 1:
        yp = (s[:, 0] > case.get("threshold", 0.5)).astype(int)
    else:
        yp = np.argmax(s, axis=1)
    labels = list(range(n))
    out = {"accuracy": [accuracy_score(y, yp)]}
    p, r, f, support = precision_recall_fscore_support(
        y, yp, labels=labels, average=None, zero_division=0
    )
    out["precision"], out["recall"], out["f1"] = list(p), list(r), list(f)
    out["support"] = [float(v) for v in support]
    for avg in ("macro", "micro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            y, yp, labels=labels, average=avg, zero_division=0
        )
        out[f"precision_{avg}"], out[f"recall_{avg}"], out[f"f1_{avg}"] = [p], [r], [f]
    out["confusion"] = [float(v) for v in confusion_matrix(y, yp, labels=labels).ravel()]
    out["mcc"] = [matthews_corrcoef(y, yp)]
    for k in case.get("top_k", []):
        out[f"top_{k}"] = [top_k_accuracy_score(y, s, k=k, labels=labels)]
    return out


def roc_binary(case):
    y = np.array(case["labels"])
    s = np.array(case["scores"], dtype=np.float64)
    keep = example_rows(case, len(y))
    y, s = y[keep], s[keep]
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    return {
        "auc": [roc_auc_score(y, s)],
        "auprc": [average_precision_score(y, s)],
        "curve_fpr": list(fpr),
        "curve_tpr": list(tpr),
        "curve_threshold": [float(t) for t in thr[1:]],  # thr[0] is +inf (or max + 1)
    }


def roc_multiclass(case):
    n = case["num_classes"]
    y = np.array(case["labels"])
    s = np.array(case["scores"], dtype=np.float64)
    keep = example_rows(case, len(y))
    y, s = y[keep], s[keep]
    big_y = label_binarize(y, classes=list(range(n)))
    auc = [roc_auc_score(big_y[:, c], s[:, c]) for c in range(n)]
    ap = [average_precision_score(big_y[:, c], s[:, c]) for c in range(n)]
    return {
        "auc": auc,
        "auprc": ap,
        "auc_macro": [roc_auc_score(big_y, s, average="macro")],
        "auprc_macro": [average_precision_score(big_y, s, average="macro")],
        "auc_micro": [roc_auc_score(big_y, s, average="micro")],
        "auprc_micro": [average_precision_score(big_y, s, average="micro")],
    }


def regression(case):
    y = np.array(case["labels"], dtype=np.float64)
    p = np.array(case["predictions"], dtype=np.float64)
    mask = case.get("mask")
    cols = y.shape[1]
    if mask is None:
        m = np.ones_like(y, dtype=bool)
    else:
        m = np.array(mask) != 0
        if m.shape[1] == 1:
            m = np.repeat(m, cols, axis=1)
    out = {k: [] for k in ("mse", "mae", "rmse", "r2", "pearson")}
    for c in range(cols):
        yc, pc = y[m[:, c], c], p[m[:, c], c]
        mse = mean_squared_error(yc, pc)
        out["mse"].append(mse)
        out["mae"].append(mean_absolute_error(yc, pc))
        out["rmse"].append(float(np.sqrt(mse)))
        out["r2"].append(r2_score(yc, pc))
        out["pearson"].append(float(np.corrcoef(yc, pc)[0, 1]))
    for k in ("mse", "mae", "rmse", "r2"):
        out[f"{k}_avg"] = [float(np.mean(out[k]))]
    if mask is None:
        # scikit-learn's own multi-output averaging must agree with the per-column mean.
        out["mse_avg"] = [mean_squared_error(y, p)]
        out["mae_avg"] = [mean_absolute_error(y, p)]
        out["r2_avg"] = [r2_score(y, p)]
    return out


KINDS = {
    "classification": classification,
    "roc_binary": roc_binary,
    "roc_multiclass": roc_multiclass,
    "regression": regression,
}

with open(sys.argv[1]) as f:
    cases = json.load(f)
result = {case["name"]: KINDS[case["kind"]](case) for case in cases}
json.dump({name: {k: [float(v) for v in vs] for k, vs in r.items()} for name, r in result.items()}, sys.stdout)
