_base_ = ['./monodle_dla34_kitti.py']

model = dict(bbox_head=dict(bbox_coder=dict(writelist=['Pedestrian', 'Car', 'Cyclist'])))
