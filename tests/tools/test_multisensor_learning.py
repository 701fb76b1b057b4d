"""Learning checks of the fused-band encoder on the generated multi-sensor sample data (CPU).

Each task's answer is carried by what the feature exists for (non-RGB bands; the change
between two dates). The fused model must learn it (>= 90% greedy accuracy on its training
records). The same model without that input (RGB bands only; one date) can still memorise
some of its 64 training images, so whether it learned the signal is judged on the held-out
validation records: it must stay near chance there, well below the fused model.
"""
import pytest

from tests.tools.greedy_accuracy import greedy_accuracy

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    'fused,control,val_files,chance',
    [
        # Four land-cover classes that differ only in NIR/SWIR reflectance.
        ('earthmind_tiny_1xb8_30e_sample_multispectral', 'earthmind_tiny_1xb8_30e_sample_multispectral_rgbonly',
         ('multispectral_val.json', 'multispectral_val.json'), 0.25),
        # "Did the land cover change?": each date alone is identically distributed across answers.
        ('earthmind_tiny_1xb8_30e_sample_change', 'earthmind_tiny_1xb8_30e_sample_change_singledate',
         ('change_val.json', 'change_single_date_val.json'), 0.5),
    ],
    ids=['non-rgb-bands', 'two-dates'])
def test_fused_encoder_learns_what_the_control_cannot(trained_recipe, fused, control, val_files, chance):
    workspace = trained_recipe.workspace
    fused_config, fused_checkpoint = trained_recipe(fused)
    train_accuracy = greedy_accuracy(workspace, fused_checkpoint, config=fused_config)
    print(f'{fused}: training accuracy {train_accuracy:.3f}')
    assert train_accuracy >= 0.9, f'{fused} reached only {train_accuracy:.2f} training accuracy'
    fused_val = greedy_accuracy(workspace, fused_checkpoint, config=fused_config, data_file=val_files[0])
    print(f'{fused}: held-out accuracy {fused_val:.3f}')

    control_config, control_checkpoint = trained_recipe(control)
    control_val = greedy_accuracy(workspace, control_checkpoint, config=control_config, data_file=val_files[1])
    print(f'{control}: held-out accuracy {control_val:.3f} (chance {chance})')
    # 16 validation records: chance plus 0.25 is about two standard deviations of a guessing model.
    assert control_val <= chance + 0.25, f'control {control} reached {control_val:.2f} held out (chance {chance})'
    assert fused_val >= control_val + 0.2, f'fused {fused_val:.2f} vs control {control_val:.2f} held out'
