"""Bad samples: an error naming file and line, or skipped and counted.

:class:`BadSampleMixin` gives an mmengine ``BaseDataset`` subclass the
``skip_bad_samples``/``max_bad_fraction`` options:

- by default a bad annotation line (malformed JSON, unknown label, missing
  image, ...) raises :class:`DataError` while the dataset is built, and an
  image that fails to decode raises it when the sample is loaded; both name
  the annotation file, the line and the image;
- with ``skip_bad_samples=True`` each bad sample is logged once and left
  out (at build time) or replaced by another sample (at load time, in
  training, as mmengine's refetch does); the count is reported at the end
  of the run (:class:`~mmfusion.engine.hooks.BadSampleReportHook`), and the
  dataset refuses to be used when more than ``max_bad_fraction`` of its
  samples are bad.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

from mmengine.logging import print_log


T = TypeVar('T')

#: Values of the datasets' ``check_images`` option.
CHECK_IMAGES = ('exists', 'decode')


class DataError(ValueError):
    """A sample or annotation file that cannot be used; says where."""


class MissingImageError(DataError):
    """An annotation line whose image file does not exist.

    Kept apart from other bad lines so that a file none of whose image
    paths exist gets its own message (usually a wrong ``data_root`` or
    image folder rather than bad lines).
    """


class BadSampleMixin:
    """Bad-sample bookkeeping for a ``BaseDataset`` (see module docstring).

    Subclasses call :meth:`_init_bad_samples` before
    ``BaseDataset.__init__``, read their annotation file in
    ``load_data_list`` with :meth:`_parse_annotations` (which sends each
    bad line to :meth:`_bad`, raising unless skipping, and each line whose
    image does not exist to :meth:`_missing_image`; later checks call
    :meth:`_bad` themselves), then :meth:`_finish_build` (or
    :meth:`_check_bad_fraction`);
    ``prepare_data`` is wrapped here. Data infos should hold ``ann_line``
    (and ``img_path``, and ``seg_map_path`` where there is a mask) so
    load-time errors can say where the sample came from.
    """

    skip_bad_samples: bool = False
    max_bad_fraction: float = 0.01

    def _init_bad_samples(self, skip_bad_samples: bool,
                          max_bad_fraction: float,
                          check_images: str = 'exists') -> None:
        """Check and keep the options; ``check_images`` is one of
        :data:`CHECK_IMAGES`."""
        if check_images not in CHECK_IMAGES:
            raise ValueError(f'check_images must be one of {CHECK_IMAGES}, '
                             f'got {check_images!r}')
        self.check_images = check_images
        if not 0 <= float(max_bad_fraction) <= 1:
            raise ValueError('max_bad_fraction must be in [0, 1], got '
                             f'{max_bad_fraction}')
        self.skip_bad_samples = bool(skip_bad_samples)
        self.max_bad_fraction = float(max_bad_fraction)
        self.bad_samples: List[str] = []       # found when built
        self.bad_loads: Dict[int, str] = {}    # found when loaded

    def _bad(self, message: str) -> None:
        """One bad sample: raise (default) or log it once and count it."""
        if not self.skip_bad_samples:
            raise DataError(message)
        self.bad_samples.append(message)
        print_log(f'skipping a bad sample: {message}', logger='current',
                  level=logging.WARNING)

    def _parse_annotations(self, path: str,
                           parse: Callable[[str, int], T]
                           ) -> Tuple[List[Tuple[int, T]], int, List[str]]:
        """Run ``parse(line, line_number)`` on each non-blank line of
        ``path``, for :meth:`_finish_build`.

        A line that is not UTF-8 or whose ``parse`` raises
        :class:`DataError` goes to :meth:`_bad` (which raises unless
        skipping); one raising :class:`MissingImageError` goes to
        :meth:`_missing_image`. Blank lines (e.g. a trailing one) are left
        out.

        Returns:
            ``(line number, parsed)`` of each good line; the number of
            non-blank lines; the missing-image messages.
        """
        parsed: List[Tuple[int, T]] = []
        missing: List[str] = []
        total = 0
        with open(path, 'rb') as f:
            for lineno, raw in enumerate(f, start=1):
                try:
                    line = raw.decode('utf-8')
                except UnicodeDecodeError as err:
                    total += 1
                    self._bad(f'{path}:{lineno}: not UTF-8 text ({err}); '
                              'save the file as UTF-8.')
                    continue
                if not line.strip():
                    continue
                total += 1
                try:
                    parsed.append((lineno, parse(line, lineno)))
                except MissingImageError as err:
                    self._missing_image(str(err), missing)
                except DataError as err:
                    self._bad(str(err))
        return parsed, total, missing

    def _missing_image(self, message: str, missing: List[str]) -> None:
        """A line whose image does not exist: noted in ``missing`` (for
        :meth:`_finish_build`), and skipped and counted when skipping."""
        missing.append(message)
        if self.skip_bad_samples:
            self._bad(message)

    def _finish_build(self, total: int, missing: List[str], source: str,
                      expected: str) -> None:
        """The checks at the end of ``load_data_list``.

        Args:
            total: non-blank lines read (good and bad).
            missing: messages of the lines whose image does not exist.
            source: the annotation file.
            expected: what a line should look like (for the message about
                a file without samples).
        """
        if total == 0:
            raise DataError(f'{source}: no samples (the file has no '
                            f'non-blank line); expected {expected}')
        if missing and len(missing) == total:
            raise DataError(
                f'{source}: none of the {total} image paths exist; the '
                f'first: {missing[0]}')
        if missing and not self.skip_bad_samples:
            more = (f' ({len(missing)} of {total} lines name missing images)'
                    if len(missing) > 1 else '')
            raise DataError(missing[0] + more)
        self._check_bad_fraction(total, source)

    def _check_bad_fraction(self, total: int, source: str) -> None:
        bad = len(self.bad_samples) + len(getattr(self, 'bad_loads', {}))
        if total == 0:
            raise DataError(f'{source}: no samples')
        if bad and bad >= total:
            raise DataError(f'{source}: all {total} samples are bad; the '
                            f'first: {self._first_bad()}')
        if bad > self.max_bad_fraction * total:
            raise DataError(
                f'{source}: {bad} of {total} samples are bad '
                f'({100.0 * bad / total:.2f}%), more than max_bad_fraction='
                f'{self.max_bad_fraction:g}. The first: {self._first_bad()}. '
                'Fix the data, or raise max_bad_fraction if that many losses '
                'are acceptable.')

    def _first_bad(self) -> str:
        if self.bad_samples:
            return self.bad_samples[0]
        loads = getattr(self, 'bad_loads', {})
        return next(iter(loads.values()), '')

    def full_init(self) -> None:
        """Build the dataset, then fill the caches of the pipeline's
        transforms that ask for it: decoded images
        (``CachedLoadImageFromFile(prefill=True)``, also inside a
        ``CachedCompose``), then packed samples (``CachedCompose(prefill=
        True)``)."""
        if getattr(self, '_fully_initialized', False):
            return
        super().full_init()
        self._prefill_caches()

    def _prefill_caches(self) -> None:
        pipeline = getattr(self, 'pipeline', None)
        transforms = getattr(pipeline, 'transforms', [])
        if len(self) == 0:
            return
        images = [t for t in transforms
                  if getattr(t, 'prefill_on_init', False)]
        if images:
            paths = [self.get_data_info(i).get('img_path')
                     for i in range(len(self))]
            paths = [p for p in paths if p]
            start = time.perf_counter()
            added = sum(t.prefill(paths) for t in images)
            print_log(f'{type(self).__name__}: decoded {added} images into '
                      f'the cache in {time.perf_counter() - start:.1f} s.',
                      logger='current', level=logging.INFO)
        # Whole packed samples (CachedCompose(prefill=True)), after the
        # images so that decoding ran on every core.
        for t in transforms:
            if getattr(t, 'prefill_results_on_init', False):
                start = time.perf_counter()
                added = t.prefill_results(self)
                print_log(f'{type(self).__name__}: ran {added} samples '
                          f'through {type(t).__name__} in '
                          f'{time.perf_counter() - start:.1f} s.',
                          logger='current', level=logging.INFO)

    def sample_where(self, idx: int) -> str:
        """``ann_file:line`` of a sample, and its image (and mask)."""
        try:
            info = self.get_data_info(idx)
        except Exception:
            return f'{getattr(self, "ann_file", "?")}: sample {idx}'
        where = f'{getattr(self, "ann_file", "?")}:{info.get("ann_line", "?")}'
        files = []
        if info.get('img_path'):
            files.append(f'image {info["img_path"]}')
        if info.get('seg_map_path'):
            files.append(f'mask {info["seg_map_path"]}')
        if files:
            where += f' ({", ".join(files)})'
        return where

    def prepare_data(self, idx) -> Any:
        try:
            return super().prepare_data(idx)
        except DataError:
            raise
        except Exception as exc:
            message = (f'{self.sample_where(idx)}: the sample failed to load: '
                       f'{type(exc).__name__}: {exc}')
            if not self.skip_bad_samples or self.test_mode:
                hint = (' (in test mode bad samples are not replaced: use '
                        "check_images='decode' to leave them out when the "
                        'dataset is built)' if self.skip_bad_samples else '')
                raise DataError(message + hint) from exc
            if idx not in self.bad_loads:
                self.bad_loads[idx] = message
                print_log(f'skipping a bad sample: {message}',
                          logger='current', level=logging.WARNING)
                self._check_bad_fraction(
                    len(self) + len(self.bad_samples),
                    str(getattr(self, 'ann_file', type(self).__name__)))
            return None  # mmengine's __getitem__ fetches another sample

    def bad_sample_summary(self) -> Optional[str]:
        """One line for the end-of-run report, or None if all were good."""
        found = len(getattr(self, 'bad_samples', []))
        loaded = len(getattr(self, 'bad_loads', {}))
        if not found and not loaded:
            return None
        total = len(self) + found
        return (f'{getattr(self, "ann_file", type(self).__name__)}: '
                f'{found + loaded} bad samples skipped of {total} '
                f'({found} when the dataset was built, {loaded} when '
                'loaded in this process)')
