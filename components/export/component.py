"""export: publish the checkpoint as a new integer version of the Triton model repository
(``vlaops export``): bf16 params with LoRA merged, norm stats, tokenizer, resolved config, and the
model's ``config.pbtxt``. A version is never edited in place, and a failed export leaves no half
version (``storage.publish_dir``). The ``served`` pointer tells deploy which version to roll out.
"""

from kfp import dsl
from kfp.dsl import Input, Metrics, Model, Output

from vlaops import images


@dsl.component(base_image=images.SERVE, install_kfp_package=False)
def export(
    checkpoint: Input[Model],
    model_repository: str,
    model_name: str,
    served: Output[Model],
    metrics: Output[Metrics],
):
    import json
    import os
    import time

    from vlaops import storage
    from vlaops.serve import export as ex

    start = time.perf_counter()
    version = ex.export(checkpoint.metadata["uri"], model_repository, model_name)
    pointer = {
        "uri": storage.join(model_repository, model_name, str(version)),
        "version": version,
        "model_repository": model_repository,
        "model_name": model_name,
        "checkpoint": checkpoint.metadata["uri"],
    }
    served.metadata.update(pointer)
    os.makedirs(os.path.dirname(served.path) or ".", exist_ok=True)
    with open(served.path, "w") as f:
        json.dump(pointer, f, indent=2)

    metrics.log_metric("version", version)
    metrics.log_metric("seconds", round(time.perf_counter() - start, 2))
    os.makedirs(os.path.dirname(metrics.path) or ".", exist_ok=True)
    with open(metrics.path, "w") as f:
        json.dump(metrics.metadata, f, indent=2)
