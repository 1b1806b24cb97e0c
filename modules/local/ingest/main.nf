// Read one decoy (PDB/mmCIF, gzipped or not), check it is a complex, and write the cleaned
// structure every later step starts from, plus what was changed and why.
process INGEST {
    tag "${meta.id}"
    label 'process_single'
    container 'egr-nf/egr:0.1.0'

    input:
    tuple val(meta), path(decoy)

    output:
    // A refused decoy (--keep-going) has no clean PDB but a <id>_scores.json with its reason,
    // which the summary lists as failed, as `egr run` does.
    tuple val(meta), path("${meta.id}/${meta.id}_clean.pdb")  , emit: clean , optional: true
    tuple val(meta), path("${meta.id}/${meta.id}_ingest.json"), emit: json  , optional: true
    tuple val(meta), path("${meta.id}/${meta.id}_scores.json"), emit: failed, optional: true
    tuple val("${task.process}"), val('egr'), eval('egr --version'), emit: versions_egr, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    egr ingest ${decoy} --outdir . --id ${meta.id} --keep-going ${args}
    """

    stub:
    """
    mkdir -p ${meta.id}
    touch ${meta.id}/${meta.id}_clean.pdb ${meta.id}/${meta.id}_ingest.json
    """
}
