// EGR inference on a batch of graphs: refined all-atom structure, per-residue predicted
// LDDT-Cα and decoy-level QA for every graph. Batching several decoys per task pays the
// model start-up (and, with --use_gpu, the GPU job) once per batch. ext.args carries
// `--device cuda|cpu` and `--batch-size`.
process EGR_REFINE {
    tag "${meta.id}"
    label 'process_medium'
    label 'process_gpu'
    container 'egr-nf/egr:0.1.0'

    input:
    tuple val(meta), path(graphs)         // meta.id names the batch; graphs are <id>_graph.pt files
    tuple path(weights), path(model_card) // W.safetensors and its W.json sidecar; [] and [] for the shipped model

    output:
    // One <id>/ folder per graph of the batch; the workflow splits them back per decoy. Every graph
    // gets a <id>_scores.json: a decoy that fails (--keep-going) gets its own failed record, with its
    // reason, and no structure, while the others of the batch go on.
    tuple val(meta), path("*/*_refined.pdb"), emit: refined, optional: true
    tuple val(meta), path("*/*_plddt.csv")  , emit: plddt  , optional: true
    tuple val(meta), path("*/*_scores.json"), emit: scores
    tuple val("${task.process}"), val('egr'), eval('egr --version'), emit: versions_egr, topic: versions
    tuple val("${task.process}"), val('torch'), eval("python -c 'import torch; print(torch.__version__)'"), emit: versions_torch, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def weights_arg = weights ? "--weights ${weights}" : ''
    """
    # torch/BLAS threads follow the task's cpus, not the node's core count.
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus}
    egr refine ${graphs} --outdir . ${weights_arg} --keep-going ${args}
    """

    stub:
    """
    for graph in ${graphs}; do
        id=\$(basename "\$graph" _graph.pt)
        mkdir -p "\$id"
        touch "\$id/\${id}_refined.pdb" "\$id/\${id}_plddt.csv" "\$id/\${id}_scores.json"
    done
    """
}
