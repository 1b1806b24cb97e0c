// A comparison refiner on one cleaned decoy: `egr baseline <method>` (egr/baselines/), in the image
// that has the method's program. Every refiner of the registry (egr/data/refiners.json) runs here;
// the workflow gives each task its method and image from that file, so a new refiner needs no
// change to this module or to the workflow. Refiners whose programs cannot be redistributed
// (Modeller, GalaxyRefineComplex) run in images the user builds (containers/README.md).
// The refined model is optional: when the refiner is missing or fails on this decoy, the JSON
// says why (status, reason) and the pipeline goes on.
process BASELINE_REFINE {
    tag "${meta.id} ${method}"
    label 'process_low'
    container "${image}"

    input:
    tuple val(meta), path(structure), val(method), val(image)

    output:
    tuple val(meta), val(method), path("${meta.id}/${meta.id}_${method}.pdb") , emit: pdb, optional: true
    tuple val(meta), path("${meta.id}/${meta.id}_${method}.json"), emit: json
    tuple val("${task.process}"), val('egr'), eval('egr --version'), emit: versions_egr, topic: versions
    tuple val("${task.process}"), val(method), eval("egr refiner-version ${method}"), emit: versions_refiner, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    # torch/BLAS/OpenMM threads follow the task's cpus, not the node's core count.
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus} OPENMM_CPU_THREADS=${task.cpus}
    # exit 1 is a failed refinement whose reason is in the JSON record: keep the record (the summary
    # shows it) instead of failing the task; anything else fails the task.
    egr baseline ${method} ${structure} --outdir . --id ${meta.id} ${args} \\
        || { status=\$?; [ \$status -eq 1 ] && [ -s ${meta.id}/${meta.id}_${method}.json ] || exit \$status; }
    """

    stub:
    """
    mkdir -p ${meta.id}
    touch ${meta.id}/${meta.id}_${method}.pdb
    echo '{}' > ${meta.id}/${meta.id}_${method}.json
    """
}
