// Build EGR's all-atom graph (k = 20 nearest neighbours, node and edge features) from the
// cleaned structure and its surface.
process FEATURIZE {
    tag "${meta.id}"
    label 'process_single'
    container 'egr-nf/egr:0.1.0'

    input:
    tuple val(meta), path(clean), path(surface)

    output:
    // A decoy this step fails on (--keep-going) has no graph but a <id>_scores.json with its reason
    // and failed_step, which the summary lists as failed, as `egr run` does.
    tuple val(meta), path("${meta.id}/${meta.id}_graph.pt")   , emit: graph , optional: true
    tuple val(meta), path("${meta.id}/${meta.id}_scores.json"), emit: failed, optional: true
    tuple val("${task.process}"), val('egr'), eval('egr --version'), emit: versions_egr, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    # torch/BLAS threads follow the task's cpus, not the node's core count.
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus}
    egr featurize ${clean} --surface ${surface} --outdir . --id ${meta.id} --keep-going ${args}
    """

    stub:
    """
    mkdir -p ${meta.id}
    touch ${meta.id}/${meta.id}_graph.pt
    """
}
