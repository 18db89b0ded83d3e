"""The methods of both clients, declared once: each an :class:`~service.client.binding.endpoint`
(or :class:`~service.client.binding.paged` listing) of its builder, blocking on
:class:`~service.client.Client`, a coroutine (an async iterator) on
:class:`~service.client.AsyncClient`."""

from __future__ import annotations

from service.client import compute, datasets, health, jobs, learn, models
from service.client.binding import endpoint, paged


class Methods:
    """The endpoints of the ``/v1`` API (and the health probes) as client methods."""

    # -- models -------------------------------------------------------------------------------

    create_model = endpoint(models.create_model)
    import_model = endpoint(models.import_model)
    list_models = endpoint(models.list_models)
    get_model = endpoint(models.get_model)
    delete_model = endpoint(models.delete_model)
    get_parameters = endpoint(models.get_parameters)
    put_parameters = endpoint(models.put_parameters)
    list_versions = endpoint(models.list_versions)
    rollback = endpoint(models.rollback)
    export_model = endpoint(models.export_model)
    iter_models = paged(models.every_model)

    # -- compute ------------------------------------------------------------------------------

    forward = endpoint(compute.forward)
    forward_array = endpoint(compute.forward_array)
    gradient = endpoint(compute.gradient)
    input_gradient = endpoint(compute.input_gradient)
    input_gradient_arrays = endpoint(compute.input_gradient_arrays)
    gradient_check = endpoint(compute.gradient_check)
    train_step = endpoint(compute.train_step)
    forward_stateless = endpoint(compute.forward_stateless)
    gradient_stateless = endpoint(compute.gradient_stateless)
    input_gradient_stateless = endpoint(compute.input_gradient_stateless)
    train_step_stateless = endpoint(compute.train_step_stateless)

    # -- learn --------------------------------------------------------------------------------

    explain = endpoint(learn.explain)
    explain_markdown = endpoint(learn.explain_markdown)
    walkthrough = endpoint(learn.walkthrough)
    diagram_svg = endpoint(learn.diagram_svg)
    history_svg = endpoint(learn.history_svg)

    # -- datasets -----------------------------------------------------------------------------

    create_dataset = endpoint(datasets.create_dataset)
    upload_dataset = endpoint(datasets.upload_dataset)
    list_datasets = endpoint(datasets.list_datasets)
    get_dataset = endpoint(datasets.get_dataset)
    get_dataset_data = endpoint(datasets.get_dataset_data)
    get_dataset_arrays = endpoint(datasets.get_dataset_arrays)
    delete_dataset = endpoint(datasets.delete_dataset)
    iter_datasets = paged(datasets.every_dataset)

    # -- jobs ---------------------------------------------------------------------------------

    train = endpoint(jobs.train)
    get_job = endpoint(jobs.get_job)
    list_jobs = endpoint(jobs.list_jobs)
    cancel_job = endpoint(jobs.cancel_job)
    resume_job = endpoint(jobs.resume_job)
    history = endpoint(jobs.history)
    iter_jobs = paged(jobs.every_job)
    iter_history = paged(jobs.whole_history)

    # -- operations ---------------------------------------------------------------------------

    healthz = endpoint(health.healthz)
    readyz = endpoint(health.readyz)
