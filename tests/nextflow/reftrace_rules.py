"""House rules for `reftrace lint` (run by tests/test_nextflow.py on the pipeline's .nf and .config files).

reftrace injects Module, ConfigFile, LintError, LintWarning, LintResults, rule and configrule into this
module's namespace before running it; every rule reports errors, so any finding fails the test.
"""

SIZE_LABELS = {"process_single", "process_low", "process_medium", "process_high"}
OTHER_LABELS = {"process_long", "process_high_memory", "process_gpu"}


@rule  # noqa: F821
def one_size_label(module, results):
    """Resources come from conf/base.config through exactly one size label."""
    for process in module.processes:
        names = [label.label for label in process.labels]
        sizes = [n for n in names if n in SIZE_LABELS]
        unknown = [n for n in names if n not in SIZE_LABELS | OTHER_LABELS]
        if len(sizes) != 1:
            results.errors.append(LintError(process.line, f"{process.name}: needs exactly one of {sorted(SIZE_LABELS)}, has {sizes}"))  # noqa: F821
        if unknown:
            results.errors.append(LintError(process.line, f"{process.name}: labels not defined in conf/base.config: {unknown}"))  # noqa: F821


@rule  # noqa: F821
def gpu_only_for_inference(module, results):
    """Only EGR inference may sit on GPU nodes."""
    for process in module.processes:
        if any(label.label == "process_gpu" for label in process.labels) and process.name != "EGR_REFINE":
            results.errors.append(LintError(process.line, f"{process.name}: process_gpu is for EGR_REFINE only"))  # noqa: F821


@rule  # noqa: F821
def pinned_container(module, results):
    """One container per process, with an explicit version tag (never :latest, never a full registry URL)."""
    from reftrace.directives import ContainerFormat

    for process in module.processes:
        containers = process.containers
        if len(containers) != 1:
            results.errors.append(LintError(process.line, f"{process.name}: needs exactly one container directive"))  # noqa: F821
            continue
        container = containers[0]
        names = [container.simple_name] if container.format == ContainerFormat.SIMPLE else [container.true_name, container.false_name]
        for name in filter(None, names):
            if name in ("$image", "${image}"):  # BASELINE_REFINE: the registry's image, each pinned (test_nextflow.py)
                continue
            tag = name.rsplit(":", 1)[1] if ":" in name.split("/")[-1] else ""
            if not tag or tag == "latest" or " " in name or name.startswith(("http", "quay.io", "docker.io")):
                results.errors.append(LintError(container.line, f"{process.name}: container '{name}' must be name:version"))  # noqa: F821


@rule  # noqa: F821
def resources_live_in_conf(module, results):
    """cpus/memory/time/publishDir/accelerator are set in conf/, so profiles can change them."""
    for process in module.processes:
        for kind in ("cpus", "memories", "times", "publish_dirs", "accelerators", "cluster_options", "executors", "queues"):
            for directive in getattr(process, kind):
                results.errors.append(LintError(directive.line, f"{process.name}: `{kind}` belongs in conf/*.config"))  # noqa: F821


@rule  # noqa: F821
def has_tag_or_is_run_level(module, results):
    """Per-decoy steps show the decoy in the log; run-level steps (one task per run) need no tag."""
    run_level = {"EVALUATE", "REPORT", "MULTIQC"}
    for process in module.processes:
        if process.name not in run_level and not process.tags:
            results.errors.append(LintError(process.line, f"{process.name}: add `tag \"${{meta.id}}\"`"))  # noqa: F821


def _violates_closure_rule(value):
    # A value that reads params must be a closure, so it is evaluated per task after all configs load.
    return bool(value.params) and not value.in_closure


@configrule  # noqa: F821
def params_in_closures(config, results):
    for scope in config.process_scopes:
        for directive in [*scope.directives, *[d for named in scope.named_scopes for d in named.directives]]:
            if directive.value is not None:
                if _violates_closure_rule(directive.value):
                    results.errors.append(LintError(directive.line_number, f"{directive.name}: wrap params in a closure {{ ... }}"))  # noqa: F821
            else:
                for option in directive.options:
                    # publishDir's `mode:` cannot be a closure.
                    if not (directive.name == "publishDir" and option.name == "mode") and _violates_closure_rule(option.value):
                        results.errors.append(LintError(option.line_number, f"{directive.name}.{option.name}: wrap params in a closure"))  # noqa: F821
