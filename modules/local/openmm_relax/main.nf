// Baseline: restrained AMBER14 minimisation with OpenMM (pdbfixer completes missing atoms
// first), the physics-based reference EGR is compared with.
// The refined model is optional: when the refiner is missing or fails on this decoy, the JSON
// says why (status, reason) and the pipeline goes on.
process OPENMM_RELAX {
    tag "${meta.id}"
    label 'process_low'
    container 'egr-nf/egr:0.1.0'

    input:
    tuple val(meta), path(structure)

    output:
    tuple val(meta), path("${meta.id}/${meta.id}_openmm.pdb") , emit: pdb, optional: true
    tuple val(meta), path("${meta.id}/${meta.id}_openmm.json"), emit: json
    tuple val("${task.process}"), val('egr'), eval('egr --version'), emit: versions_egr, topic: versions
    tuple val("${task.process}"), val('openmm'), eval("python -c 'import openmm; print(openmm.__version__)'"), emit: versions_openmm, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    # torch/BLAS threads follow the task's cpus, not the node's core count.
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus} OPENMM_CPU_THREADS=${task.cpus}
    # exit 1 is a failed refinement whose reason is in the JSON record: keep the record (the summary
    # shows it) instead of failing the task; anything else fails the task.
    egr baseline openmm ${structure} --outdir . --id ${meta.id} ${args} \\
        || { status=\$?; [ \$status -eq 1 ] && [ -s ${meta.id}/${meta.id}_openmm.json ] || exit \$status; }
    """

    stub:
    """
    mkdir -p ${meta.id}
    touch ${meta.id}/${meta.id}_openmm.pdb
    echo '{}' > ${meta.id}/${meta.id}_openmm.json
    """
}
