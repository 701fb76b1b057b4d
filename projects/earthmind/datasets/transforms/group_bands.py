"""Arrange the bands into named 3-channel groups."""
import numpy as np
from mmcv.transforms import BaseTransform

from projects.earthmind.registry import TRANSFORMS

from ..sensors import get_sensor


@TRANSFORMS.register_module()
class GroupBands(BaseTransform):
    """Stack the channels into 3-channel groups for the shared ViT.

    A group member is a band name or ``'A-B'`` (band A minus band B, both normalised).
    Groups of every sensor of the sample are concatenated in member order (optical
    then SAR for pairs).

    Args:
        groups (dict[str, list[tuple[str, list[str]]]] | None): Per sensor name, the
            ``(group name, [band, band, band])`` list; sensors not listed use their
            default groups (``sensors.py``). Group names must be in the configs'
            ``band_group_vocab``.

    Replaces ``img`` ``[D, C, H, W]`` by ``[D, G, 3, H, W]`` and adds ``group_names``.
    """

    def __init__(self, groups=None):
        self.groups = {sensor: [(name, list(members)) for name, members in spec]
                       for sensor, spec in (groups or {}).items()}
        for sensor, spec in self.groups.items():
            for name, members in spec:
                if len(members) != 3:
                    raise ValueError(f'group {name!r} of {sensor} has {len(members)} bands; groups have exactly 3')

    def sensor_groups(self, sensor_name):
        """``(group name, members)`` list used for ``sensor_name``."""
        if sensor_name in self.groups:
            return self.groups[sensor_name]
        return [(name, list(members)) for name, members in get_sensor(sensor_name).default_groups]

    def group_names(self, sensors):
        """Group names for a sample with these sensors (what ``transform`` will produce)."""
        return [name for sensor in sensors for name, _ in self.sensor_groups(sensor)]

    def transform(self, results):
        """Build the groups."""
        img = results.get('img')
        if img is None:
            results['group_names'] = []
            return results
        index = {channel: i for i, channel in enumerate(results['channels'])}

        def channel(sensor, band_name):
            canonical = get_sensor(sensor).band(band_name).name
            if (sensor, canonical) not in index:
                raise ValueError(f'record {results.get("record_id")!r}: band group needs {canonical} of {sensor}, '
                                 'which was not loaded; add it to LoadMultiSensorImages(bands=...)')
            return img[:, index[(sensor, canonical)]]

        stacks, names = [], []
        for sensor in results['sensors']:
            for name, members in self.sensor_groups(sensor):
                planes = []
                for member in members:
                    first, minus, second = member.partition('-')
                    plane = channel(sensor, first)
                    planes.append(plane - channel(sensor, second) if minus else plane)
                stacks.append(np.stack(planes, axis=1))
                names.append(name)
        results['img'] = np.stack(stacks, axis=1)
        results['group_names'] = names
        return results

    def __repr__(self):
        return f'{type(self).__name__}(groups={self.groups})'
