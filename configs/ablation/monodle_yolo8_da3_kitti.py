_base_ = ['../monodle_yolo8_da3.py']
