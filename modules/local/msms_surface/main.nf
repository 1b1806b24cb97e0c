// Per-chain molecular surface (probe 1.5 Å) for EGR's surface-proximity feature.
// The container holds the real MSMS; ext.args (conf/modules.config) passes
// `--backend ${params.surface_backend}`, so `--surface_backend builtin` switches to the
// package's fallback surface without changing the pipeline.
process MSMS_SURFACE {
    tag "${meta.id}"
    label 'process_single'
    container 'egr-nf/msms:0.1.0'

    input:
    tuple val(meta), path(clean)

    output:
    // A decoy this step fails on (--keep-going) has no surface but a <id>_scores.json with its reason
    // and failed_step, which the summary lists as failed, as `egr run` does.
    tuple val(meta), path("${meta.id}/${meta.id}_surface.npz"), emit: surface, optional: true
    tuple val(meta), path("${meta.id}/${meta.id}_scores.json"), emit: failed , optional: true
    tuple val("${task.process}"), val('egr'), eval('egr --version'), emit: versions_egr, topic: versions
    tuple val("${task.process}"), val('msms'), eval("msms 2>&1 | grep -m 1 -o '^MSMS [0-9.]*' | cut -d ' ' -f 2"), emit: versions_msms, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    egr surface ${clean} --outdir . --id ${meta.id} --keep-going ${args}
    """

    stub:
    """
    mkdir -p ${meta.id}
    touch ${meta.id}/${meta.id}_surface.npz
    """
}
