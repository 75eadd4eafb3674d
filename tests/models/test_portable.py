"""NumPy inference of every saved model family equals the fitted estimator; loading imports nothing heavy."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from genrekit.core.errors import ModelError
from genrekit.datasets.table import feature_matrix, read_table
from genrekit.models.export import export_model
from genrekit.models.io import METADATA_FILE, load_model_dir, save_model
from genrekit.models.portable import PROBA_FLOOR, PortableClassifier
from genrekit.models.registry import make_model

# Estimators are fitted on 300 rows and compared on 200 others. Families whose NumPy arithmetic
# follows the estimator's own operation for operation agree to ~1e-12 (sums in another order);
# models whose probabilities are turned into logits floored at PROBA_FLOOR (1e-9) agree to 1e-8.
# Forests store their leaf shares in float32 (relative error 6e-8), hence 1e-7 for them.
EXACT, FLOORED, FLOAT32 = 1e-10, 10 * PROBA_FLOOR, 1e-7
FAMILIES = {
    "logreg": EXACT,  # multinomial logistic regression
    "mlp-tuned": EXACT,  # dense ReLU network
    "svm": FLOORED,  # the paper's SVM: CalibratedClassifierCV(SVC), one sigmoid per class
    "svm-tuned": FLOORED,  # the same calibration, on log-variance features
    "knn": FLOORED,  # the paper's k-NN: neighbour shares
    "knn-tuned": FLOORED,  # inverse-distance weights
    "extratrees": FLOAT32,  # sklearn tree arrays; leaf shares
    "gbm": EXACT,  # LightGBM trees from dump_model()
}


@pytest.fixture(scope="module")
def data(gtzan_table):
    frame = read_table(gtzan_table)
    X, y = feature_matrix(frame), frame["label"].to_numpy(dtype=str)
    order = np.random.RandomState(0).permutation(len(y))
    return X[order[:300]], y[order[:300]], X[order[300:500]]


def _fit(name, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes of tiny grids
        return make_model(name, seed=0, tune=False, **kwargs).fit(X, y)


def _check(model, X_test, tolerance):
    spec, arrays = export_model(model)
    portable = PortableClassifier(json.loads(json.dumps(spec)), arrays, model.classes_, X_test.shape[1])
    np.testing.assert_allclose(
        portable.predict_proba(X_test), model.predict_proba(X_test), rtol=0, atol=tolerance
    )
    assert list(portable.classes_) == list(model.classes_)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_numpy_inference_equals_the_estimator(data, name):
    if name == "gbm":
        pytest.importorskip("lightgbm")
    X, y, X_test = data
    _check(_fit(name, X, y), X_test, FAMILIES[name])


@pytest.mark.parametrize("kind", ["ensemble", "stacking"])
def test_ensembles(data, kind):
    X, y, X_test = data
    model = _fit(kind, X, y, members=("logreg", "knn-tuned", "extratrees"))
    _check(model, X_test, FLOAT32)


def test_libsvm_probabilities(data):
    """SVC(probability=True): libsvm's Platt sigmoids and pairwise coupling, re-implemented."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    X, y, X_test = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # probability=True is deprecated in scikit-learn 1.9
        model = make_pipeline(StandardScaler(), SVC(C=10, probability=True, random_state=0)).fit(X, y)
        # libsvm stops its coupling iteration at an error below 0.005 / k; both sides stop alike
        _check(model, X_test, FLOORED)


def test_save_load_round_trip_and_checks(data, tmp_path):
    X, y, X_test = data
    model = make_model("logreg", seed=0).fit(X, y)  # tuned: the refitted best estimator is saved
    save_model(model, tmp_path / "m", {"recipe": {"name": "logreg"}})
    loaded, metadata = load_model_dir(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(X_test), model.predict_proba(X_test), atol=EXACT)
    assert metadata["kind"] == "genrekit-model" and metadata["format_version"] == 2
    assert metadata["model"]["type"] == "pipeline" and metadata["recipe"] == {"name": "logreg"}
    document = json.loads((tmp_path / "m" / METADATA_FILE).read_text())
    document["model"]["children"][1]["arrays"]["coef"] = "model/1/nothing"
    (tmp_path / "m" / METADATA_FILE).write_text(json.dumps(document))
    with pytest.raises(ModelError, match="lacks array"):
        load_model_dir(tmp_path / "m")
    with pytest.raises(ModelError, match="unfitted"):
        save_model(make_model("logreg"), tmp_path / "m2")
