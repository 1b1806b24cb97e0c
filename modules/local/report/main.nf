// The self-contained HTML report (report.html) and the same tables as MultiQC custom content
// (*_mqc.tsv / *_mqc.yaml; MultiQC only picks up files named so).
process REPORT {
    label 'process_single'
    container 'egr-nf/egr:0.1.0'

    input:
    path results, stageAs: 'results/*'   // per-decoy files plus summary.tsv and evaluation.tsv
    // MultiQC itself runs in the MULTIQC step

    output:
    path "report.html"              , emit: html
    path "*_mqc.{tsv,yaml}"         , emit: mqc
    tuple val("${task.process}"), val('egr'), eval('egr --version'), emit: versions_egr, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    egr report results --outdir . --no-multiqc ${args}
    """

    stub:
    """
    touch report.html egr_decoys_mqc.tsv
    """
}
