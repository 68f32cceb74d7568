"""Cost and comparison tools: FLOPs, model stats, ablation tables."""
from .ablation import ablation_table, summarize_groups
from .flops import EXTRA_FLOP_FORMULAS, count_flops, flop_counter, model_flops
from .model_stats import (STATS_KEYS, collect_model_stats, read_model_stats,
                          steady_time_per_iter, trainable_params,
                          write_model_stats)

__all__ = [
    'EXTRA_FLOP_FORMULAS', 'count_flops', 'flop_counter', 'model_flops',
    'STATS_KEYS', 'collect_model_stats', 'read_model_stats',
    'steady_time_per_iter', 'trainable_params', 'write_model_stats',
    'ablation_table', 'summarize_groups'
]
