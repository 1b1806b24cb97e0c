// Read one decoy (PDB/mmCIF, gzipped or not), check it is a complex, and write the cleaned
// structure every later step starts from, plus what was changed and why.
process INGEST {
    tag "${meta.id}"
    label 'process_single'
    container 'egr-nf/egr:0.1.0'

    input:
    tuple val(meta), path(decoy)

    output:
    tuple val(meta), path("${meta.id}/${meta.id}_clean.pdb")  , emit: clean
    tuple val(meta), path("${meta.id}/${meta.id}_ingest.json"), emit: json
    path "versions.yml"                                        , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    egr ingest ${decoy} --outdir . --id ${meta.id} ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        egr: \$(egr --version 2>&1 | sed 's/.* //')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p ${meta.id}
    touch ${meta.id}/${meta.id}_clean.pdb ${meta.id}/${meta.id}_ingest.json

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        egr: 0.1.0
    END_VERSIONS
    """
}
