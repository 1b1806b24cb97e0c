// DockQ v2 (Fnat, iRMSD, LRMSD, DockQ per interface) of one model against its native, through
// the package's wrapper so every refiner is scored the same way. meta.model says which model
// this is: `decoy` (the cleaned input), `egr`, or a baseline (`openmm`, `modeller`, `galaxy`).
process DOCKQ_SCORE {
    tag "${meta.id}:${meta.model}"
    label 'process_single'
    container 'egr-nf/dockq:0.1.0'

    input:
    // The native (`reference`: `native` is reserved in Groovy) is staged in its own folder,
    // as natives are often named like their decoys.
    tuple val(meta), path(model), path(reference, stageAs: 'native/*')

    output:
    tuple val(meta), path("${meta.id}/${meta.id}_${meta.model}_dockq.json"), emit: json
    path "versions.yml"                                                      , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    mkdir -p ${meta.id}
    egr score ${model} ${reference} --json ${args} > ${meta.id}/${meta.id}_${meta.model}_dockq.json

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        egr: \$(egr --version 2>&1 | sed 's/.* //')
        dockq: \$(python -c 'from importlib.metadata import version; print(version("DockQ"))')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p ${meta.id}
    echo '{}' > ${meta.id}/${meta.id}_${meta.model}_dockq.json

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        egr: 0.1.0
        dockq: 2.1.3
    END_VERSIONS
    """
}
