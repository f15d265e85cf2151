"""export — DRAFT, not wired into pipelines/finetune.py (see README.md).

Publish a checkpoint as a new Triton model-repository version (``vlaops export``). This body calls
today's ``vlaops.serve.export.export``; it has not run through kfp.local yet.
"""

from kfp import dsl
from kfp.dsl import Input, Model, Output

from vlaops import images


@dsl.component(base_image=images.SERVE, install_kfp_package=False)
def export(checkpoint: Input[Model], model_repository: str, model_name: str, served: Output[Model]):
    from vlaops import storage
    from vlaops.serve import export as ex

    version = ex.export(checkpoint.metadata["uri"], model_repository, model_name)
    served.metadata.update(
        {
            "uri": storage.join(model_repository, model_name, str(version)),
            "version": version,
            "model_repository": model_repository,
            "model_name": model_name,
        }
    )
