"""What a user uploads to the demo, turned into the exported processor's image arguments.

Uploads are resolved by scene inference's own input resolution (:func:`open_scene`): the sensor comes from the
file (band descriptions, band names of per-band files, a ``SENSOR`` tag) when it says, else from the sensor the user
picks, else from the band count when one registered sensor has it (said in the description, as a guess); band counts,
grids and dates are checked from the headers before any pixel is read.
"""
import os
from dataclasses import dataclass

from projects.earthmind.datasets.raster_io import _open_raster
from projects.earthmind.datasets.sensors import SENSORS
from projects.earthmind.inference.scene_source import Scene, open_scene

DETECT = 'detect from the file'


@dataclass(frozen=True)
class DemoInput:
    """An uploaded image, ready for ``predict_forward``.

    Attributes:
        scene (Scene): The resolved input (image argument, sensor, bands, date, grid).
        label (str): The uploaded file names, for messages.
        note (str): How the sensor was guessed, when the file does not say.
    """

    scene: Scene
    label: str
    note: str = ''

    def processor_inputs(self):
        """Keyword arguments of ``predict_forward`` / ``EarthMindProcessor.__call__`` describing the image."""
        scene = self.scene
        return dict(image=scene.image, sensor=scene.sensor, bands=scene.bands, date=scene.date, **scene.fields)

    @property
    def georeferenced(self):
        """Whether the input has a CRS (downloads are offered then)."""
        return bool(self.scene.grid.crs)

    def describe(self):
        """One line about the input: sensor, size, dates and CRS."""
        scene = self.scene
        sensor = scene.sensor if isinstance(scene.sensor, (str, type(None))) else \
            ' + '.join(f'{role}: {name}' for role, name in scene.sensor.items())
        dates = [entry[0] if isinstance(entry, tuple) else entry['date'] for entry in scene.image] \
            if isinstance(scene.image, list) else [scene.date] if scene.date else []
        parts = [f'{self.label}: sensor {sensor or "none (RGB product)"}',
                 f'{scene.grid.width} x {scene.grid.height} px']
        if dates:
            parts.append('dates ' + ', '.join(dates))
        parts.append(f'CRS {scene.grid.crs}' if scene.grid.crs else 'not georeferenced')
        return ', '.join(parts + ([self.note] if self.note else []))


def _band_name(path):
    """The GDAL description of a one-band file (its band's name), else None."""
    with _open_raster(path) as dataset:
        description = dataset.descriptions[0] if dataset.count == 1 else None
    return description or None


def sensor_from_band_count(path):
    """The one registered sensor with as many bands as the file (not for 3 bands: RGB products), else None."""
    with _open_raster(path) as dataset:
        count = dataset.count
    fits = [name for name, spec in SENSORS.items() if spec.bands and len(spec.band_names) == count]
    return fits[0] if len(fits) == 1 and count != 3 else None


def band_folder(paths, folder):
    """Link per-band files into ``folder``, named by their band description when they have one, else kept.

    Returns:
        str: ``folder``, which :func:`open_scene` reads as a folder of per-band files.
    """
    os.makedirs(folder, exist_ok=True)
    for path in paths:
        stem, ext = os.path.splitext(os.path.basename(path))
        name = (_band_name(path) or stem) + ext
        target = os.path.join(folder, name)
        if os.path.exists(target):
            raise ValueError(f'two uploaded files are band {os.path.splitext(name)[0]}: rename one')
        os.symlink(os.path.abspath(path), target)
    return folder


def open_upload(files, folder, sensor=None, date=None, second=None, second_date=None, sar=None, sar_sensor=None,
                max_pixels=None):
    """Resolve an upload into a :class:`DemoInput`.

    Args:
        files (Sequence[str]): One image (PNG, JPEG, GeoTIFF) or several per-band GeoTIFFs (band from the file's
            description, else its name).
        folder (str): Scratch folder of this upload (per-band files are linked there).
        sensor (str | None): The user's sensor (None or :data:`DETECT`: from the file).
        date (str | None): Acquisition date ``YYYY-MM-DD`` of ``files``.
        second (str | None): A second image of the same sensor: a change question between ``date`` and
            ``second_date``.
        second_date (str | None): Its date.
        sar (str | Sequence[str] | None): The SAR member of a SAR + optical pair (``files`` is the optical member):
            one file, or one file per band.
        sar_sensor (str | None): The SAR member's sensor (None or :data:`DETECT`: Sentinel-1 GRD).
        max_pixels (int | None): Largest accepted width times height.

    Returns:
        DemoInput: The resolved input.

    Raises:
        ValueError | FileNotFoundError | OSError: Naming the file and what is wrong (unreadable file, no sensor
            detected, band count not fitting the sensor, missing dates, image too large).
    """
    files = [os.fspath(f) for f in files or ()]
    if not files:
        raise ValueError('upload an image first')
    sensor = None if sensor in (None, '', DETECT) else sensor
    sar_sensor = None if sar_sensor in (None, '', DETECT) else sar_sensor
    date, second_date = (date or '').strip() or None, (second_date or '').strip() or None
    first = files[0] if len(files) == 1 else band_folder(files, os.path.join(folder, 'bands'))
    note = ''
    label = ', '.join(os.path.basename(f) for f in files)
    sar_files = [os.fspath(f) for f in ([sar] if isinstance(sar, (str, os.PathLike)) else sar or ())]
    sar = None if not sar_files else sar_files[0] if len(sar_files) == 1 else \
        band_folder(sar_files, os.path.join(folder, 'sar_bands'))
    try:
        if second:
            if sar:
                raise ValueError('give a second date or a SAR image, not both')
            scene = open_scene([first, second], sensor, dates=[date, second_date])
            label += f' and {os.path.basename(second)}'
        else:
            if sar:
                label += ' + SAR ' + ', '.join(os.path.basename(f) for f in sar_files)
            try:
                scene = open_scene(first, sensor, dates=[date] if date else None, sar=sar, sar_sensor=sar_sensor)
            except ValueError as err:
                guess = None if sensor or first != files[0] else sensor_from_band_count(first)
                if guess is None:
                    raise
                try:
                    scene = open_scene(first, guess, dates=[date] if date else None, sar=sar, sar_sensor=sar_sensor)
                except ValueError as guess_err:
                    raise ValueError(f'{err}; read as {guess}, the one sensor with its band count: {guess_err}') \
                        from guess_err
                note = f'sensor {guess} guessed from the band count (pick another in the Sensor list if wrong)'
    except ValueError as err:
        message = str(err).replace('pass --sensor', 'choose the sensor in the Sensor list')
        message = message.replace('(--dates)', '(the Date field)').replace(
            "pass --bands with the file's bands, in order", 'the demo takes files holding all of its bands in order, '
            'or one file per band')
        raise ValueError(message) from err
    pixels = scene.grid.width * scene.grid.height
    if max_pixels and pixels > max_pixels:
        raise ValueError(f'{label} is {scene.grid.width} x {scene.grid.height} px = {pixels} pixels; this demo takes '
                         f'at most {max_pixels} (--max-pixels)')
    return DemoInput(scene, label, note)

