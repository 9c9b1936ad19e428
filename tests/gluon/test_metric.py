"""Evaluation metrics against MXNet 1.9.1 reference values, plus API semantics."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from hybrid import metric
from tests.golden_cases import arrays, cases

METRIC_CASES = cases("metric")


def _build(api: str, kwargs: dict) -> metric.EvalMetric:
    cls = getattr(metric, api.split(".")[-1])
    if "children" in kwargs:
        return cls([_build(child["api"], child["kwargs"]) for child in kwargs["children"]])
    return cls(**kwargs)


def _batches(entry: dict, data: dict) -> list[tuple[list, list]]:
    batches = []
    for b in range(entry["call"]["n_batches"]):
        labels = sorted(k for k in data if k.startswith(f"labels_{b}_"))
        preds = sorted(k for k in data if k.startswith(f"preds_{b}_"))
        batches.append(([data[k] for k in labels], [data[k] for k in preds]))
    return batches


def test_every_metric_golden_case_is_collected():
    assert len(METRIC_CASES) == 20


@pytest.mark.parametrize("entry", METRIC_CASES, ids=[c["name"] for c in METRIC_CASES])
def test_metric_matches_mxnet_local_and_global_values(entry):
    data = arrays(entry["name"])
    m = _build(entry["api"], entry["kwargs"])
    for labels, preds in _batches(entry, data):
        m.update(labels=labels, preds=preds)
    name, value = m.get()
    global_name, global_value = m.get_global()
    expected_names = entry["call"]["names"]
    if isinstance(name, list):
        assert name == expected_names
        assert global_name == expected_names
    else:
        assert [name] == expected_names
        assert [global_name] == expected_names
    got = np.atleast_1d(np.asarray(value, dtype=np.float64))
    got_global = np.atleast_1d(np.asarray(global_value, dtype=np.float64))
    np.testing.assert_allclose(got, data["value"], rtol=entry["rtol"], atol=entry["atol"])
    np.testing.assert_allclose(
        got_global, data["global_value"], rtol=entry["rtol"], atol=entry["atol"]
    )


def test_metric_accepts_ndarray_inputs():
    import hybrid as mx

    data = arrays("accuracy")
    m = metric.Accuracy()
    m.update([mx.nd.array(data["labels_0_0"])], [mx.nd.array(data["preds_0_0"])])
    m.update([mx.nd.array(data["labels_1_0"])], [mx.nd.array(data["preds_1_0"])])
    np.testing.assert_allclose(m.get()[1], arrays("accuracy")["value"][0], rtol=1e-6)


# ----------------------------------------------------------------------------- base API


def test_get_is_nan_before_any_update():
    for m in (metric.Accuracy(), metric.MSE(), metric.Perplexity(None), metric.F1()):
        name, value = m.get()
        assert name == m.name
        assert math.isnan(value)
        assert math.isnan(m.get_global()[1])


def test_reset_local_keeps_global_accumulators():
    m = metric.Accuracy()
    m.update([np.array([0, 1])], [np.array([[1.0, 0.0], [1.0, 0.0]])])  # 1 of 2
    m.reset_local()
    assert math.isnan(m.get()[1])
    assert m.get_global() == ("accuracy", 0.5)
    m.update([np.array([1, 1])], [np.array([[0.0, 1.0], [0.0, 1.0]])])  # 2 of 2
    assert m.get()[1] == 1.0
    assert m.get_global()[1] == pytest.approx(0.75)
    m.reset()
    assert math.isnan(m.get()[1])
    assert math.isnan(m.get_global()[1])


def test_single_arrays_are_wrapped_like_lists():
    a, b = metric.Accuracy(), metric.Accuracy()
    label = np.array([0, 1, 2])
    pred = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]], dtype=np.float32)
    a.update(label, pred)
    b.update([label], [pred])
    assert a.get() == b.get()
    assert a.get()[1] == pytest.approx(2 / 3)


def test_accuracy_uses_predictions_as_class_ids_when_shapes_match():
    m = metric.Accuracy()
    m.update([np.array([0.0, 1.0, 2.0])], [np.array([0.0, 0.9, 2.2])])  # int32 truncation
    assert m.get()[1] == pytest.approx(2 / 3)


def test_accuracy_axis_selects_the_class_axis():
    m = metric.Accuracy(axis=0)
    pred = np.array([[0.9, 0.1], [0.1, 0.9]])  # argmax over axis 0 -> [0, 1]
    m.update([np.array([0, 0])], [pred])
    assert m.get()[1] == 0.5


def test_topk_accuracy_name_and_counting():
    m = metric.TopKAccuracy(top_k=2)
    assert m.name == "top_k_accuracy_2"
    pred = np.array([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1]])
    m.update([np.array([2, 2])], [pred])  # 2 is in the top 2 of row 0 only
    assert m.get()[1] == 0.5
    with pytest.raises(AssertionError):
        metric.TopKAccuracy(top_k=1)


def test_f1_rejects_more_than_two_classes():
    m = metric.F1()
    with pytest.raises(ValueError, match="binary"):
        m.update([np.array([0, 1, 2])], [np.eye(3)[:, :2]])


def test_f1_macro_averages_per_batch_scores_while_micro_pools_counts():
    label0, pred0 = np.array([1, 1]), np.array([[0.0, 1.0], [1.0, 0.0]])  # tp=1 fn=1 -> 2/3
    label1, pred1 = np.array([1, 0]), np.array([[0.0, 1.0], [0.0, 1.0]])  # tp=1 fp=1 -> 2/3
    label2, pred2 = np.array([0, 0]), np.array([[1.0, 0.0], [1.0, 0.0]])  # no positives -> 0
    macro, micro = metric.F1(average="macro"), metric.F1(average="micro")
    for lab, pr in ((label0, pred0), (label1, pred1), (label2, pred2)):
        macro.update([lab], [pr])
        micro.update([lab], [pr])
    assert macro.get()[1] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    assert micro.get()[1] == pytest.approx(2 / 3)  # tp=2 fp=1 fn=1


def test_mcc_replaces_zero_denominator_terms_by_one():
    m = metric.MCC()
    m.update([np.array([1, 1])], [np.array([[0.0, 1.0], [0.0, 1.0]])])  # tp=2 only
    assert m.get()[1] == 0.0


def test_perplexity_excludes_ignored_labels_from_sum_and_count():
    m = metric.Perplexity(ignore_label=0)
    pred = np.array([[0.5, 0.5], [0.2, 0.8], [0.9, 0.1]], dtype=np.float32)
    m.update([np.array([0, 1, 0])], [pred])
    assert m.get()[1] == pytest.approx(1 / 0.8, rel=1e-6)
    assert m.num_inst == 1


def test_perplexity_requires_flattened_label_size_to_match_prediction_rows():
    m = metric.Perplexity(ignore_label=None)
    with pytest.raises(AssertionError, match="shape mismatch"):
        m.update([np.zeros((3,))], [np.full((2, 4), 0.25)])


def test_regression_metrics_average_per_batch_values():
    mae, rmse = metric.MAE(), metric.RMSE()
    for lab, pr in (
        (np.array([0.0, 0.0]), np.array([1.0, 3.0])),
        (np.array([0.0]), np.array([2.0])),
    ):
        mae.update([lab], [pr])
        rmse.update([lab], [pr])
    assert mae.get()[1] == pytest.approx((2.0 + 2.0) / 2)
    assert rmse.get()[1] == pytest.approx((math.sqrt(5.0) + 2.0) / 2)


def test_cross_entropy_and_nll_average_over_samples():
    pred = np.array([[0.25, 0.75], [0.5, 0.5]])
    label = np.array([1, 0])
    expected = -(math.log(0.75 + 1e-12) + math.log(0.5 + 1e-12)) / 2
    for m in (metric.CrossEntropy(), metric.NegativeLogLikelihood()):
        m.update([label], [pred])
        assert m.get()[1] == pytest.approx(expected)
    assert metric.CrossEntropy().name == "cross-entropy"
    assert metric.NegativeLogLikelihood().name == "nll-loss"


def test_pearson_micro_global_value_stays_zero_like_mxnet():
    m = metric.PearsonCorrelation(average="micro")
    m.update([np.array([1.0, 2.0, 3.0])], [np.array([1.0, 2.5, 2.9])])
    assert m.get()[1] == pytest.approx(np.corrcoef([1, 2, 3], [1, 2.5, 2.9])[0, 1])
    assert m.get_global()[1] == 0.0


def test_pearson_requires_identical_shapes():
    with pytest.raises(ValueError, match=re.escape("(3,)") + ".*" + re.escape("(3, 1)")):
        metric.PearsonCorrelation().update([np.zeros(3)], [np.zeros((3, 1))])


def test_pcc_grows_confusion_matrix_for_new_classes():
    m = metric.PCC()
    m.update([np.array([0, 1, 2, 3])], [np.array([0, 1, 2, 3])])
    assert m.k == 4
    assert m.get()[1] == pytest.approx(1.0)


def test_loss_metric_ignores_labels_and_averages_all_values():
    m = metric.Loss()
    m.update(None, np.array([1.0, 2.0, 3.0]))
    m.update([], [np.array([[4.0]])])
    assert m.get() == ("loss", 2.5)
    assert metric.Torch().name == "torch"
    assert metric.Caffe().name == "caffe"


# ----------------------------------------------------------------------- composite


def test_composite_reports_one_entry_per_child_and_resets_children():
    comp = metric.CompositeEvalMetric()
    comp.add(metric.Accuracy())
    comp.add("mse")
    label, pred = np.array([1.0, 0.0]), np.array([1.0, 1.0])
    comp.update([label], [pred])
    names, values = comp.get()
    assert names == ["accuracy", "mse"]
    assert values == [0.5, 0.5]
    assert comp.get_name_value() == [("accuracy", 0.5), ("mse", 0.5)]
    comp.reset_local()
    assert all(math.isnan(v) for v in comp.get()[1])
    assert comp.get_global()[1] == [0.5, 0.5]
    assert comp.get_global_name_value() == [("accuracy", 0.5), ("mse", 0.5)]
    comp.reset()
    assert all(math.isnan(v) for v in comp.get_global()[1])


def test_composite_get_metric_returns_error_instead_of_raising():
    comp = metric.CompositeEvalMetric(["acc"])
    assert isinstance(comp.get_metric(0), metric.Accuracy)
    assert isinstance(comp.get_metric(5), ValueError)


# ---------------------------------------------------------------------- create / registry


@pytest.mark.parametrize(
    "name, cls",
    [
        ("acc", metric.Accuracy),
        ("accuracy", metric.Accuracy),
        ("ACC", metric.Accuracy),
        ("top_k_accuracy", metric.TopKAccuracy),
        ("top_k_acc", metric.TopKAccuracy),
        ("topkaccuracy", metric.TopKAccuracy),
        ("f1", metric.F1),
        ("mcc", metric.MCC),
        ("mae", metric.MAE),
        ("mse", metric.MSE),
        ("rmse", metric.RMSE),
        ("ce", metric.CrossEntropy),
        ("crossentropy", metric.CrossEntropy),
        ("nll_loss", metric.NegativeLogLikelihood),
        ("negativeloglikelihood", metric.NegativeLogLikelihood),
        ("pearsonr", metric.PearsonCorrelation),
        ("pearsoncorrelation", metric.PearsonCorrelation),
        ("pcc", metric.PCC),
        ("loss", metric.Loss),
        ("torch", metric.Torch),
        ("caffe", metric.Caffe),
        ("composite", metric.CompositeEvalMetric),
    ],
)
def test_create_resolves_names_and_aliases(name, cls):
    kwargs = {"top_k": 3} if cls is metric.TopKAccuracy else {}
    assert type(metric.create(name, **kwargs)) is cls


def test_create_perplexity_passes_positional_arguments():
    m = metric.create("perplexity", -1)
    assert isinstance(m, metric.Perplexity)
    assert m.ignore_label == -1


def test_create_from_list_callable_instance_and_json():
    comp = metric.create(["acc", "mse"])
    assert isinstance(comp, metric.CompositeEvalMetric)
    assert [type(c) for c in comp.metrics] == [metric.Accuracy, metric.MSE]

    def my_metric(label, pred):
        return float(np.abs(label - pred).sum())

    custom = metric.create(my_metric)
    assert isinstance(custom, metric.CustomMetric)
    assert custom.name == "my_metric"

    acc = metric.Accuracy()
    assert metric.create(acc) is acc
    with pytest.raises(AssertionError):
        metric.create(acc, 1)

    from_json = metric.create(json.dumps(["top_k_accuracy", {"top_k": 4}]))
    assert from_json.top_k == 4


def test_get_config_round_trips_through_create():
    m = metric.Accuracy(axis=2, name="my_acc", output_names=["out"])
    config = m.get_config()
    assert config == {
        "axis": 2,
        "metric": "Accuracy",
        "name": "my_acc",
        "output_names": ["out"],
        "label_names": None,
    }
    rebuilt = metric.create(**config)
    assert type(rebuilt) is metric.Accuracy
    assert (rebuilt.axis, rebuilt.name, rebuilt.output_names) == (2, "my_acc", ["out"])

    comp = metric.CompositeEvalMetric(["acc", "mae"])
    rebuilt_comp = metric.create(**comp.get_config())
    assert [type(c) for c in rebuilt_comp.metrics] == [metric.Accuracy, metric.MAE]


def test_create_unknown_name_fails():
    with pytest.raises(AssertionError, match="not registered"):
        metric.create("no_such_metric")


def test_register_and_alias_make_custom_metrics_creatable():
    @metric.register
    @metric.alias("always_one")
    class AlwaysOne(metric.EvalMetric):
        def __init__(self):
            super().__init__("always_one")

        def update(self, labels, preds):
            self.sum_metric += 1
            self.num_inst += 1

    assert type(metric.create("alwaysone")) is AlwaysOne
    m = metric.create("always_one")
    m.update([], [])
    # Without has_global_stats, get_global() reports get().
    assert m.get_global() == m.get() == ("always_one", 1.0)
    assert m.get_global_name_value() == [("always_one", 1.0)]


def test_custom_metric_tuple_return_and_lambda_name():
    m = metric.CustomMetric(lambda label, pred: (float((label == pred).sum()), label.size))
    assert m.name == "custom(<lambda>)"
    m.update([np.array([1, 2, 3])], [np.array([1, 0, 3])])
    assert m.get()[1] == pytest.approx(2 / 3)
    with pytest.raises(NotImplementedError):
        m.get_config()


def test_np_wrapper_names_metric_after_function():
    def mean_abs(label, pred):
        return np.abs(label - pred).mean()

    m = metric.np(mean_abs)
    m.update([np.array([1.0, 2.0])], [np.array([2.0, 2.0])])
    assert m.name == "mean_abs"
    assert m.get()[1] == pytest.approx(0.5)


def test_custom_metric_allow_extra_outputs_skips_length_check():
    m = metric.np(lambda label, pred: 1.0, allow_extra_outputs=True)
    m.update([np.zeros(2)], [np.zeros(2), np.zeros(3)])
    assert m.num_inst == 1
    strict = metric.np(lambda label, pred: 1.0)
    with pytest.raises(ValueError):
        strict.update([np.zeros(2)], [np.zeros(2), np.zeros(3)])


# ---------------------------------------------------------------------- shape checks


def test_check_label_shapes_error_names_both_shapes():
    with pytest.raises(
        ValueError, match=r"Shape of labels 2 does not match shape of predictions 3"
    ):
        metric.check_label_shapes([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match=re.escape("(2, 3)") + ".*" + re.escape("(3, 2)")):
        metric.check_label_shapes(np.zeros((2, 3)), np.zeros((3, 2)), shape=True)


def test_check_label_shapes_wraps_single_arrays_after_checking():
    label, pred = np.zeros(4), np.zeros((4, 2))
    labels, preds = metric.check_label_shapes(label, pred, wrap=True)
    assert labels[0] is label and preds[0] is pred
    same = [label]
    assert metric.check_label_shapes(same, [pred], wrap=True)[0] is same


def test_update_with_different_numbers_of_labels_and_preds_fails():
    with pytest.raises(ValueError, match="1 does not match shape of predictions 2"):
        metric.Accuracy().update([np.zeros(2)], [np.zeros(2), np.zeros(2)])


def test_accuracy_flattened_length_mismatch_fails():
    with pytest.raises(ValueError, match="does not match"):
        metric.Accuracy().update([np.zeros(3)], [np.zeros((2, 4))])


def test_update_dict_selects_named_outputs_and_labels():
    m = metric.Accuracy(output_names=["b"], label_names=["y"])
    m.update_dict(
        {"x": np.array([0.0]), "y": np.array([1.0])},
        {"a": np.array([[1.0, 0.0]]), "b": np.array([[0.0, 1.0]])},
    )
    assert m.get()[1] == 1.0
    comp = metric.CompositeEvalMetric(["acc"], output_names=["b"], label_names=["y"])
    comp.update_dict(
        {"x": np.array([0.0]), "y": np.array([1.0])},
        {"a": np.array([[1.0, 0.0]]), "b": np.array([[0.0, 1.0]])},
    )
    assert comp.get()[1] == [1.0]


def test_str_shows_name_value_pairs():
    m = metric.MSE()
    m.update([np.array([1.0])], [np.array([3.0])])
    text = str(m)
    assert text.startswith("EvalMetric: {'mse': ")
    assert "4.0" in text
