import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Derived model files (OpenVINO IRs of test models) go to a cache of this run only.
os.environ["FACEREC_CACHE"] = tempfile.mkdtemp(prefix="facerec-test-cache-")
atexit.register(shutil.rmtree, os.environ["FACEREC_CACHE"], True)


def _data_root() -> Path | None:
    from facerec.training.data import data_root

    return data_root()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared face data (FACEREC_DATA or ../shared/data); tests using it skip without it."""
    root = _data_root()
    if root is None:
        pytest.skip("face data not found: set FACEREC_DATA or place it at ../shared/data")
    return root


@pytest.fixture(scope="session")
def lfw_photo(data_dir) -> Path:
    return data_dir / "lfw" / "lfw-deepfunneled" / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"


@pytest.fixture(scope="session")
def bad_model_reason():
    """load_embedder(path) must fail with BadModel, one line "PATH: reason"; returns the reason."""
    from facerec.runtime.base import BadModel
    from facerec.runtime import load_embedder

    def reason(path) -> str:
        with pytest.raises(BadModel) as e:
            load_embedder(path)
        assert str(e.value) == f"{path}: {e.value.reason}" and "\n" not in str(e.value)
        return e.value.reason

    return reason


@pytest.fixture(scope="session")
def detector():
    from facerec.faces.detect import FaceDetector

    return FaceDetector()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """An untrained tiny exported model: enough to exercise galleries and matching."""
    from facerec.nets.model import build_model, export_model

    out = tmp_path_factory.mktemp("tiny_model")
    export_model(build_model("tiny", 112, 32, weights=None), out, {"name": "tiny-test", "threshold": 0.5})
    return out


@pytest.fixture(scope="session")
def other_model(tmp_path_factory) -> Path:
    from facerec.nets.model import build_model, export_model

    out = tmp_path_factory.mktemp("other_model")
    export_model(build_model("tiny", 112, 32, weights=None), out, {"name": "other"})
    return out


@pytest.fixture(scope="session")
def celeb_dir(tmp_path_factory, data_dir) -> Path:
    """Two LFW people × 2 photos in the folder-per-person layout."""
    import shutil

    root = tmp_path_factory.mktemp("celebs")
    lfw = data_dir / "lfw" / "lfw-deepfunneled"
    for name in ("Abdullah_Gul", "Alejandro_Toledo"):
        (root / name).mkdir()
        for p in sorted((lfw / name).glob("*.jpg"))[:2]:
            shutil.copy(p, root / name / p.name)
    return root
