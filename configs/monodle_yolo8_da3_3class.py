_base_ = ['./monodle_yolo8_da3.py']

model = dict(bbox_head=dict(bbox_coder=dict(writelist=['Pedestrian', 'Car', 'Cyclist'])))
