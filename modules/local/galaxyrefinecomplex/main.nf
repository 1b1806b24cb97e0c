// Baseline: GalaxyRefineComplex. The program is not redistributable, so its image is built by
// the user with their copy (containers/galaxyrefinecomplex/); without it the step records a skip.
// The refined model is optional: when the refiner is missing or fails on this decoy, the JSON
// says why (status, reason) and the pipeline goes on.
process GALAXYREFINECOMPLEX {
    tag "${meta.id}"
    label 'process_low'
    container 'egr-nf/galaxyrefinecomplex:0.1.0'

    input:
    tuple val(meta), path(structure)

    output:
    tuple val(meta), path("${meta.id}/${meta.id}_galaxy.pdb") , emit: pdb, optional: true
    tuple val(meta), path("${meta.id}/${meta.id}_galaxy.json"), emit: json
    tuple val("${task.process}"), val('egr'), eval('egr --version'), emit: versions_egr, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    # exit 1 is a failed refinement whose reason is in the JSON record: keep the record (the summary
    # shows it) instead of failing the task; anything else fails the task.
    egr baseline galaxy ${structure} --outdir . --id ${meta.id} ${args} \\
        || { status=\$?; [ \$status -eq 1 ] && [ -s ${meta.id}/${meta.id}_galaxy.json ] || exit \$status; }
    """

    stub:
    """
    mkdir -p ${meta.id}
    touch ${meta.id}/${meta.id}_galaxy.pdb
    echo '{}' > ${meta.id}/${meta.id}_galaxy.json
    """
}
