"""Learning check of the SAR path: Sentinel-1 VV/VH samples whose class shows only in the backscatter (CPU).

The four classes of the generated ``sar_*`` records are set by the VV and VH levels in dB, nothing else. The tiny
SAR-only recipe must learn them and answer held-out scenes well above chance (0.25); the same recipe whose SAR input
is zeroed before the LLM (the projector's output times 0: no pixel information reaches it) must stay near chance.
"""
import pytest

from tests.tools.greedy_accuracy import greedy_accuracy

pytestmark = pytest.mark.slow

RECIPE = 'earthmind_tiny_1xb8_30e_sample_sar'
BLIND = ('model.type=tests.tools.image_blind_model.ImageBlindModel', )
CHANCE = 0.25


def test_sar_only_model_learns_what_its_zeroed_control_cannot(trained_recipe):
    workspace = trained_recipe.workspace
    config, checkpoint = trained_recipe(RECIPE)
    train_accuracy = greedy_accuracy(workspace, checkpoint, config=config)
    held_out = greedy_accuracy(workspace, checkpoint, config=config, data_file='sar_val.json')
    print(f'SAR learning check: training accuracy {train_accuracy:.3f}, held-out {held_out:.3f} (chance {CHANCE})')
    assert train_accuracy >= 0.9, f'{RECIPE} reached only {train_accuracy:.2f} training accuracy'

    _, blind_checkpoint = trained_recipe(RECIPE, BLIND)
    control = greedy_accuracy(workspace, blind_checkpoint, cfg_options=BLIND, config=config,
                              data_file='sar_val.json')
    print(f'SAR learning check: control (SAR input zeroed) held-out {control:.3f}')
    # 16 held-out records: chance plus 0.25 is about two standard deviations of a guessing model.
    assert control <= CHANCE + 0.25, f'the control reached {control:.2f} held out'
    assert held_out >= CHANCE + 0.5 and held_out >= control + 0.4, f'held out {held_out:.2f} vs control {control:.2f}'
