// Run-level tables from every per-decoy result: summary.tsv (one row per decoy, its status and
// every score, as `egr run` writes it) and, where natives were given, the refiners' DockQ
// comparison (ΔDockQ, FI-DockQ, API-DockQ, QA top-N hit rates, ranking loss).
process EVALUATE {
    label 'process_single'
    container 'egr-nf/egr:0.1.0'

    input:
    // All per-decoy files of the run (<id>_scores.json, <id>_*_dockq.json, ...). Their names
    // start with the decoy id, so they can share one folder.
    path results, stageAs: 'results/*'

    output:
    path "summary.tsv"    , emit: summary
    path "evaluation.tsv" , emit: tsv
    path "evaluation.md"  , emit: md
    tuple val("${task.process}"), val('egr'), eval('egr --version'), emit: versions_egr, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    egr evaluate results --outdir . ${args}
    """

    stub:
    """
    touch summary.tsv evaluation.tsv evaluation.md
    """
}
