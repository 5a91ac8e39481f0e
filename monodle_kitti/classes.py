"""MonoDLE's class order: the one constant every part of the package uses."""

#: Label index -> KITTI class name, MonoDLE's order (official checkpoints' heatmap channels).
MONODLE_CLASSES: tuple[str, ...] = ('Pedestrian', 'Car', 'Cyclist')

#: Every object name a KITTI label file may contain (the devkit's list).
KITTI_CLASSES: tuple[str, ...] = ('Car', 'Van', 'Truck', 'Pedestrian', 'Person_sitting',
                                  'Cyclist', 'Tram', 'Misc', 'DontCare')
