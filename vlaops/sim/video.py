"""h264 mp4 in memory (PyAV): what browsers play inline in a report."""

from __future__ import annotations

import io

import numpy as np


class Mp4Writer:
    """Frames in (uint8 HxWx3, one at a time), mp4 bytes out; yuv420p so every browser plays it."""

    def __init__(self, fps: int, crf: int = 23):
        self.fps, self.crf = fps, crf
        self._buf = io.BytesIO()
        self._container = None
        self._stream = None

    def add(self, frame: np.ndarray) -> None:
        import av

        if self._container is None:
            h, w = frame.shape[:2]
            self._container = av.open(self._buf, mode="w", format="mp4")
            self._stream = self._container.add_stream("libx264", rate=self.fps)
            self._stream.width, self._stream.height = w - w % 2, h - h % 2
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": str(self.crf), "preset": "veryfast"}
        h, w = self._stream.height, self._stream.width
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:h, :w]), format="rgb24")
        for packet in self._stream.encode(vf):
            self._container.mux(packet)

    def finish(self) -> bytes:
        if self._container is None:
            return b""
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        return self._buf.getvalue()


def decode_frames(data: bytes) -> int:
    """Number of frames PyAV decodes from mp4 bytes (raises on a broken file)."""
    import av

    with av.open(io.BytesIO(data)) as c:
        return sum(1 for _ in c.decode(video=0))
