"""mmengine's ``CheckpointHook`` with a work dir that survives being copied or moved, and saves that survive a kill."""
import os
import os.path as osp
import shutil

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from .checkpoint_chain import write_last_checkpoint


class WorkDirCheckpointHook(CheckpointHook):
    """Save checkpoints like mmengine's ``CheckpointHook``, with two differences.

    - ``last_checkpoint`` names the checkpoint relative to the work dir (``iter_500.pth``) and is replaced in one
      step, so a copied work dir resumes from its own checkpoint and a moved one still finds it.
    - With ``max_keep_ckpts``, the oldest checkpoint is deleted once the new one is saved, not before: a run killed
      during the save (with ``max_keep_ckpts=1``, the big recipes) keeps the previous checkpoint to resume from.

    Takes the arguments of ``CheckpointHook``; local checkpoints only (``out_dir`` a folder, not a remote backend).
    """

    def _save_checkpoint_with_step(self, runner, step, meta):
        """Save checkpoint ``step`` (mmengine's bookkeeping of kept checkpoints), record it, then delete the oldest."""
        outdated = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        filename = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(self.out_dir, filename, self.file_client_args, save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
                               backend_args=self.backend_args, **self.args)
        # DeepSpeed saves from every rank; the files below are rank 0's.
        if not is_main_process():
            return
        write_last_checkpoint(runner.work_dir, self.last_ckpt)
        if outdated is not None:
            path = osp.join(self.out_dir, self.filename_tmpl.format(outdated))
            if osp.isdir(path):  # a DeepSpeed checkpoint
                shutil.rmtree(path)
            elif osp.isfile(path):
                os.remove(path)
