"""Conversion throughput: vlaops convert vs lerobot's own write path, frame by frame, same run.

    .venv/bin/python bench/convert.py                   # 4 episodes × 100 frames × 3 cameras 480×640, ~3 min on 2 cores
    .venv/bin/python bench/convert.py --episodes 8 --length 200

Writes synthetic ALOHA episode files (three 480×640 cameras, 14-d state/action), then converts
them to a LeRobot v3.0 dataset:

- reference: ``LeRobotDataset.create`` with lerobot's defaults (temporary PNG per frame, AV1 at
  ``save_episode``), ``add_frame`` for every frame read from the same files — how a hand-written
  conversion script does it; and the same with h264, to separate the codec from the write path;
- ``vlaops convert`` with --workers 1 and 2 (streaming encode, h264; shards joined by lerobot);
- the limit: encoding the same frames to h264 with PyAV and nothing else.

Prints frames/s and the speed-up over the default reference.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from vlaops.data import convert, lerobot_io, raw, synthetic


def reference(src: Path, out: Path, vcodec: str | None) -> None:
    """lerobot's own write path, called frame by frame."""
    from lerobot.configs.video import RGBEncoderConfig
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    episodes = raw.list_aloha(sorted(src.glob("*.hdf5")))
    first = episodes[0]
    shapes = {cam: img.shape for cam, img in next(first.frames()).items()}
    spec = lerobot_io.features(14, 14, shapes, {k: v.shape[1] for k, v in first.extra.items()})
    kwargs = {"rgb_encoder": RGBEncoderConfig(vcodec=vcodec)} if vcodec else {}
    ds = LeRobotDataset.create("bench/ref", 50, spec, root=out, use_videos=True, **kwargs)
    for ep in episodes:
        for i, images in enumerate(ep.frames()):
            frame = {lerobot_io.image_key(c): img for c, img in images.items()}
            frame |= {"observation.state": ep.state[i], "action": ep.action[i], "task": "bench"}
            frame |= {f"observation.{k}": v[i] for k, v in ep.extra.items()}
            ds.add_frame(frame)
        ds.save_episode()
    ds.finalize()


def encode_only(src: Path, out: Path) -> None:
    """The practical limit: PyAV h264 with lerobot's settings (crf 30, GOP 2), nothing else."""
    import av

    out.mkdir(parents=True)
    for ep in raw.list_aloha(sorted(src.glob("*.hdf5"))):
        containers, streams = {}, {}
        for i, images in enumerate(ep.frames()):
            for cam, img in images.items():
                if i == 0:
                    containers[cam] = av.open(str(out / f"{ep.path.stem}_{cam}.mp4"), "w")
                    streams[cam] = containers[cam].add_stream(
                        "libx264", rate=50, options={"crf": "30", "g": "2"}
                    )
                    streams[cam].width, streams[cam].height, streams[cam].pix_fmt = (
                        img.shape[1],
                        img.shape[0],
                        "yuv420p",
                    )
                containers[cam].mux(
                    streams[cam].encode(av.VideoFrame.from_ndarray(img, format="rgb24"))
                )
        for cam, c in containers.items():
            c.mux(streams[cam].encode())
            c.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--episodes", type=int, default=4)
    p.add_argument("--length", type=int, default=100)
    args = p.parse_args()
    logging.disable(logging.INFO)
    lerobot_io.quiet()

    with tempfile.TemporaryDirectory(prefix="vlaops-bench-") as tmp:
        tmp = Path(tmp)
        src = tmp / "raw"
        src.mkdir()
        for i in range(args.episodes):
            synthetic.aloha_episode(
                src / f"episode_{i}.hdf5",
                args.length,
                ("cam_high", "cam_left_wrist", "cam_right_wrist"),
                (480, 640),
                seed=i,
            )
        frames = args.episodes * args.length
        runs = [
            (
                "reference: lerobot add_frame, defaults (PNG + AV1)",
                lambda o: reference(src, o, None),
            ),
            ("reference: lerobot add_frame, h264", lambda o: reference(src, o, "h264")),
            (
                "vlaops convert --workers 1",
                lambda o: convert.convert(str(src), "aloha-hdf5", str(o), "bench/v", 50, workers=1),
            ),
            (
                "vlaops convert --workers 2",
                lambda o: convert.convert(str(src), "aloha-hdf5", str(o), "bench/v", 50, workers=2),
            ),
            (
                "limit: h264 encode alone (PyAV, one stream at a time)",
                lambda o: encode_only(src, o),
            ),
        ]
        results = []
        for name, fn in runs:
            out = tmp / "out"
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.perf_counter()
            fn(out)
            secs = time.perf_counter() - t0
            if not name.startswith("limit"):
                assert lerobot_io.open_dataset(out, "bench/x").num_frames == frames
            results.append((name, secs))

    base = results[0][1]
    print(
        f"\n{args.episodes} episodes × {args.length} frames × 3 cameras 480×640 ({frames} frames), {os.cpu_count()} cores"
    )
    print(f"| {'method':<56} | {'seconds':>8} | {'frames/s':>9} | {'vs reference':>12} |")
    print(f"|{'-' * 58}|{'-' * 10}|{'-' * 11}|{'-' * 14}|")
    for name, secs in results:
        print(f"| {name:<56} | {secs:>8.1f} | {frames / secs:>9.1f} | {base / secs:>11.2f}× |")


if __name__ == "__main__":
    main()
