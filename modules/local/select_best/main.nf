// --select best-predicted: of one decoy's structures (the cleaned input, EGR's refinement and each
// comparison refiner's), keep the one with the highest EGR-predicted DockQ, each scored the same way
// (egr/select.py). The refiners' records say why a refiner has no structure. Writes the choice and
// every candidate's prediction to <id>_selection.json, which summary.tsv and the report read.
process SELECT_BEST {
    tag "${meta.id}"
    label 'process_single'
    container 'egr-nf/egr:0.1.0'

    input:
    tuple val(meta), path(candidates, stageAs: 'candidates/*') // <id>_clean.pdb, <id>_refined.pdb, <id>_<refiner>.{pdb,json}
    tuple path(weights), path(model_card)                      // as EGR_REFINE: [] and [] for the shipped model

    output:
    tuple val(meta), path("${meta.id}/${meta.id}_selection.json"), emit: json
    tuple val("${task.process}"), val('egr'), eval('egr --version'), emit: versions_egr, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def weights_arg = weights ? "--weights ${weights}" : ''
    """
    # torch/BLAS threads follow the task's cpus, not the node's core count.
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus}
    egr select ${candidates} --outdir . --id ${meta.id} ${weights_arg} ${args}
    """

    stub:
    """
    mkdir -p ${meta.id}
    echo '{}' > ${meta.id}/${meta.id}_selection.json
    """
}
