from .cls_head import ClsHead
from .multi_label_cls_head import MultiLabelClsHead

__all__ = ['ClsHead', 'MultiLabelClsHead']
