// MultiQC over the report's custom content and the pipeline's software versions, for users who
// collect several runs (or other pipelines) in MultiQC. Offline: no version check.
process MULTIQC {
    label 'process_single'
    container 'multiqc/multiqc:v1.35'

    input:
    path multiqc_files, stageAs: '?/*'   // *_mqc.tsv|yaml and *_mqc_versions.yml
    path multiqc_config                  // assets/multiqc_config.yml
    path extra_multiqc_config            // --multiqc_config, or []

    output:
    path "multiqc_report.html", emit: report
    path "multiqc_data"       , emit: data
    // Not sent to the `versions` topic: MULTIQC reads what the topic collected, and a process that
    // consumes a topic must not feed it (the run would wait on itself). The report's footer names the
    // MultiQC version.
    tuple val("${task.process}"), val('multiqc'), eval("multiqc --version | sed 's/.*version //'"), emit: versions_multiqc

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def config = multiqc_config ? "--config ${multiqc_config}" : ''
    def extra_config = extra_multiqc_config ? "--config ${extra_multiqc_config}" : ''
    """
    multiqc --force --no-version-check ${args} ${config} ${extra_config} .
    """

    stub:
    """
    mkdir multiqc_data
    touch multiqc_report.html
    """
}
