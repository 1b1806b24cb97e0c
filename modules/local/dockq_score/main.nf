// DockQ v2 (Fnat, iRMSD, LRMSD, DockQ per interface) and LDDT-Cα of every structure of one decoy
// against its native, through the package's `egr score --outdir`, the code `egr run` scores with:
// the cleaned decoy first with DockQ's chain-mapping search, then EGR's and each baseline's structure
// under the decoy's best mapping, so the deltas compare like with like.
process DOCKQ_SCORE {
    tag "${meta.id}"
    label 'process_single'
    container 'egr-nf/dockq:0.1.0'

    input:
    // `models` keep their egr names (<id>_clean.pdb, <id>_refined.pdb, <id>_<refiner>.pdb), which say
    // which method each is. The native (`reference`: `native` is reserved in Groovy) is staged in its
    // own folder, as natives are often named like their decoys.
    tuple val(meta), path(models), path(reference, stageAs: 'native/*')

    output:
    tuple val(meta), path("${meta.id}/${meta.id}_*_dockq.json", arity: '1..*'), emit: json
    tuple val("${task.process}"), val('egr'), eval('egr --version'), emit: versions_egr, topic: versions
    tuple val("${task.process}"), val('dockq'), eval("python -c 'from importlib.metadata import version; print(version(\"DockQ\"))'"), emit: versions_dockq, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    egr score ${models} ${reference} --outdir . --id ${meta.id} ${args}
    """

    stub:
    """
    mkdir -p ${meta.id}
    echo '{}' > ${meta.id}/${meta.id}_decoy_dockq.json
    """
}
