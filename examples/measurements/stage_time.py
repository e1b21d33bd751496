"""Wall time of the partner-sensitivity stage alone, with the protocol's own methods."""
import sys
import tempfile
import time
from pathlib import Path

import torch

torch.set_num_threads(1)
from faceattr.experiments.context import RunContext
from faceattr.experiments.run import prepare_run
from faceattr.experiments.stages import partner_sensitivity_stage
from faceattr.protocol import load_protocol
from faceattr.runfolder.folder import RunFolder

protocol = load_protocol(Path(sys.argv[1]))
with tempfile.TemporaryDirectory() as tmp:
    t = time.time()
    partner_sensitivity_stage(RunContext(prepare_run(protocol, Path(tmp)), RunFolder(Path(tmp))))
    print(f"{sys.argv[1]}: partner_sensitivity stage {time.time() - t:.1f} s "
          f"({protocol.partner_sensitivity.n_pairs} pairs x {len(protocol.methods)} methods)")
