import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _data_root() -> Path | None:
    from facerec.data import data_root

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
def detector():
    from facerec.detect import FaceDetector

    return FaceDetector()
