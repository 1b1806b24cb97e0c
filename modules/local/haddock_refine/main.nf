// Baseline: HADDOCK3's unrestrained refinement of the decoy as one complex, run by the CNS binary
// that haddock3 bundles. Each protocol is a refiner of its own, named by the `method` input:
// haddock_emref (energy minimisation) or haddock_mdref (short MD in explicit water); see
// egr/baselines/haddock.py for the workflow it writes.
// haddock3 lives in its own environment in the image ($EGR_HADDOCK3), apart from egr's numpy.
// The refined model is optional: when the refiner is missing or fails on this decoy, the JSON
// says why (status, reason: CNS's own message in one line) and the pipeline goes on.
process HADDOCK_REFINE {
    tag "${meta.id} ${method}"
    label 'process_low'
    container 'egr-nf/haddock3:0.1.0'

    input:
    tuple val(meta), path(structure), val(method)

    output:
    tuple val(meta), val(method), path("${meta.id}/${meta.id}_${method}.pdb") , emit: pdb, optional: true
    tuple val(meta), path("${meta.id}/${meta.id}_${method}.json"), emit: json
    tuple val("${task.process}"), val('egr'), eval('egr --version'), emit: versions_egr, topic: versions
    tuple val("${task.process}"), val('haddock3'), eval("python -c 'from egr.baselines.haddock import version; print(version())'"), emit: versions_haddock3, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
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
