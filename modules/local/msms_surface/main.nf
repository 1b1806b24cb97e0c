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
    path "versions.yml"                                         , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    egr surface ${clean} --outdir . --id ${meta.id} --keep-going ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        egr: \$(egr --version 2>&1 | sed 's/.* //')
        msms: \$(msms 2>&1 | sed -n 's/^MSMS \\([0-9.]*\\).*/\\1/p' | head -n 1)
    END_VERSIONS
    """

    stub:
    """
    mkdir -p ${meta.id}
    touch ${meta.id}/${meta.id}_surface.npz

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        egr: 0.1.0
        msms: 2.6.1
    END_VERSIONS
    """
}
