"""Inference inputs and the JSON-lines output, shared by the PyTorch and the ONNX paths.

Inputs (:func:`list_sources`): an image file, a folder of images, a glob pattern
(``'data/*/image_2/*.png'``), a video file (anything OpenCV's ``VideoCapture`` opens:
:data:`VIDEO_EXTS`), a decoded BGR image array, or a list of these. :func:`iter_frames` yields
one :class:`Frame` per image / video frame, lazily (a video is never held in memory).

Outputs: :func:`prediction_record`, one JSON object per frame (see :data:`BOX_CONVENTION`);
:class:`DrawingWriter`, the drawings (``<name>.png`` per image, ``<video stem>.mp4`` per video).

OpenCV and numpy only (the torch-free package): ``tools/deployment/ort_infer.py`` imports it
without torch.
"""
from __future__ import annotations

import glob
import os
import os.path as osp
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

import numpy as np

#: Image file extensions read from folders and globs.
IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.bmp')
#: Video file extensions (read with ``cv2.VideoCapture``).
VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg')
#: How the boxes of :func:`prediction_record` are expressed (written into every record).
BOX_CONVENTION = ('camera frame of the input camera (x right, y down, z forward, metres); '
                  'bboxes_3d = [x, y, z, l, h, w, ry]: (x, y, z) the bottom-face centre, '
                  '(l, h, w) length / height / width (mmdet3d CameraInstance3DBoxes), ry the '
                  'yaw about +y in radians (0 faces +x); bboxes_2d = [x1, y1, x2, y2] pixels '
                  'of the input image')


@dataclass
class Frame:
    """One image to detect on.

    Attributes:
        index: running index over all frames (0-based).
        name: output stem: the image stem, or ``<video stem>_<frame:06d>``.
        path: the image file, or the video file.
        img: the decoded BGR uint8 image (H, W, 3) for video frames / arrays, else None
            (the pipeline reads ``path``).
        video: the video file for video frames, else None.
        frame_index: frame number within the video, else None.
    """

    index: int
    name: str
    path: str
    img: Optional[np.ndarray] = None
    video: Optional[str] = None
    frame_index: Optional[int] = None

    @property
    def lookup(self) -> tuple[str, str]:
        """``(path, stem)`` used to find the intrinsics: the video's for a video frame."""
        if self.video is not None:
            return self.video, osp.splitext(osp.basename(self.video))[0]
        return self.path, self.name


def is_video(path: str) -> bool:
    """Whether ``path`` names a video file (by extension)."""
    return isinstance(path, str) and path.lower().endswith(VIDEO_EXTS)


def _images_of_folder(folder: str) -> list[str]:
    files = sorted(osp.join(folder, f) for f in os.listdir(folder)
                   if f.lower().endswith(IMAGE_EXTS))
    if not files:
        raise FileNotFoundError(f'{folder}: folder holds no image ({", ".join(IMAGE_EXTS)})')
    return files


def list_sources(inputs: Any) -> list:
    """Image paths, video paths and arrays, in order (folders sorted, globs sorted).

    Raises:
        FileNotFoundError: a path that does not exist, a folder without images, a glob that
            matches nothing.
    """
    if isinstance(inputs, (list, tuple)):
        out = []
        for item in inputs:
            out.extend(list_sources(item))
        return out
    if isinstance(inputs, np.ndarray):
        return [inputs]
    path = os.fspath(inputs)
    if osp.isdir(path):
        return _images_of_folder(path)
    if osp.isfile(path):
        return [path]
    if any(c in path for c in '*?['):
        files = sorted(f for f in glob.glob(path, recursive=True)
                       if f.lower().endswith(IMAGE_EXTS + VIDEO_EXTS))
        if not files:
            raise FileNotFoundError(f'{path}: the pattern matches no image or video '
                                    f'({", ".join(IMAGE_EXTS + VIDEO_EXTS)})')
        return files
    raise FileNotFoundError(f'image, video, folder or glob not found: {path}')


def open_video(path: str):
    """``cv2.VideoCapture`` of ``path`` that has at least one decodable frame.

    Raises:
        OSError: OpenCV cannot open or decode it (the message names the file).
    """
    import cv2
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise OSError(f'{path}: video could not be opened by OpenCV (corrupt, not a video, or a '
                      'codec this OpenCV build lacks); convert it, e.g. ffmpeg -i IN -c:v '
                      'libx264 OUT.mp4, or give its frames as images')
    return cap


def video_info(path: str) -> tuple[int, float]:
    """``(frame count as the container states it (0 if unknown), frames per second)``."""
    import cv2
    cap = open_video(path)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    cap.release()
    return max(count, 0), (fps if fps > 0 else 10.0)


def count_frames(sources: Sequence) -> int:
    """Number of frames :func:`iter_frames` will yield (videos: as their container states)."""
    return sum(video_info(s)[0] if is_video(s) else 1 for s in sources)


def iter_frames(sources: Sequence) -> Iterator[Frame]:
    """One :class:`Frame` per image, array and video frame of ``sources``, in order.

    Raises:
        OSError: a video that cannot be opened or yields no frame.
    """
    index = 0
    for k, src in enumerate(sources):
        if isinstance(src, np.ndarray):
            yield Frame(index, f'array_{k:06d}', f'<array {k}>', img=src)
            index += 1
        elif is_video(src):
            cap = open_video(src)
            stem = osp.splitext(osp.basename(src))[0]
            n = 0
            try:
                while True:
                    ok, img = cap.read()
                    if not ok:
                        break
                    yield Frame(index, f'{stem}_{n:06d}', src, img=img, video=src,
                                frame_index=n)
                    index += 1
                    n += 1
            finally:
                cap.release()
            if n == 0:
                raise OSError(f'{src}: OpenCV opened the video but decoded no frame (corrupt or '
                              'an unsupported codec); convert it, e.g. ffmpeg -i IN -c:v '
                              'libx264 OUT.mp4')
        else:
            yield Frame(index, osp.splitext(osp.basename(src))[0], src)
            index += 1


def prediction_record(frame: Frame, cam2img: np.ndarray, boxes_3d: np.ndarray,
                      scores: np.ndarray, labels: np.ndarray, bboxes_2d: np.ndarray,
                      class_names: Sequence[str], focal_ratio: float = 1.0,
                      virtual_shift: Optional[Sequence[int]] = None) -> dict:
    """The JSON-lines record of one frame (plain Python types).

    Args:
        boxes_3d: (N, 7) camera boxes (see :data:`BOX_CONVENTION`).
        scores: (N,) detection scores. labels: (N,) class indices. bboxes_2d: (N, 4) pixels.
        focal_ratio: this camera's focal length at the network input over the training
            camera's (1.0: used as is); virtual_shift: the (dx, dy) pixel shift of the
            virtual camera the network saw (padding > 0, cropping < 0).
    """
    labels = np.asarray(labels).astype(int).reshape(-1)
    rec = dict(frame=frame.name, index=frame.index, source=frame.path,
               box_convention=BOX_CONVENTION, box_type_3d='Camera',
               cam2img=np.asarray(cam2img, np.float64)[:3].round(6).tolist(),
               virtual_camera=dict(focal_ratio=round(float(focal_ratio), 6),
                                   shift_px=[int(v) for v in (virtual_shift or (0, 0))]),
               bboxes_3d=np.asarray(boxes_3d, np.float64).reshape(-1, 7).round(4).tolist(),
               scores_3d=np.asarray(scores, np.float64).reshape(-1).round(6).tolist(),
               labels_3d=labels.tolist(),
               class_names=[str(class_names[i]) for i in labels],
               bboxes_2d=np.asarray(bboxes_2d, np.float64).reshape(-1, 4).round(2).tolist())
    if frame.video is not None:
        rec['frame_index'] = frame.frame_index
    return rec


class DrawingWriter:
    """The drawings of a run: ``<out_dir>/<name>.png`` per image, one ``<out_dir>/<video
    stem>.mp4`` per video (mp4v, the source fps; frames in order), as ``tools/demo.py`` and
    ``tools/deployment/ort_infer.py --draw-dir`` write them. Use as a context manager (or call
    :meth:`close`): the video file is complete only after it.

    Args:
        out_dir: folder, created if missing.
    """

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        try:
            os.makedirs(out_dir, exist_ok=True)
        except OSError as e:  # a file in the way, no permission: one line, not a traceback
            raise OSError(f'{out_dir}: cannot create the drawing folder ({e.strerror}); '
                          'give a writable folder') from e
        self._writer, self._video = None, None

    def write(self, frame: Frame, canvas: np.ndarray) -> str:
        """Write one BGR uint8 canvas (H, W, 3); returns the file it went to."""
        import cv2
        if frame.video is None:
            path = osp.join(self.out_dir, frame.name + '.png')
            if not cv2.imwrite(path, canvas):
                raise OSError(f'{path}: the drawing could not be written')
            return path
        path = osp.join(self.out_dir, osp.splitext(osp.basename(frame.video))[0] + '.mp4')
        if self._video != frame.video:
            self.close()
            self._writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'),
                                           video_info(frame.video)[1],
                                           (canvas.shape[1], canvas.shape[0]))
            if not self._writer.isOpened():  # VideoWriter.write() would drop every frame
                self._writer = None
                raise OSError(f'{path}: OpenCV cannot open this video file for writing '
                              '(mp4v codec or folder permissions); give another folder')
            self._video = frame.video
        self._writer.write(canvas)
        return path

    def close(self) -> None:
        """Finish the open video file, if any."""
        if self._writer is not None:
            self._writer.release()
        self._writer, self._video = None, None

    def __enter__(self) -> DrawingWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ['BOX_CONVENTION', 'DrawingWriter', 'Frame', 'IMAGE_EXTS', 'VIDEO_EXTS', 'count_frames',
           'is_video', 'iter_frames', 'list_sources', 'open_video', 'prediction_record',
           'video_info']
