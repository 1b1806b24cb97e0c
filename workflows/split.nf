/*
========================================================================================
    SPLIT: sequence-disjoint train/validation/test splits (--workflow split)
========================================================================================
    All input structures (decoys and natives) go to one MMSEQS_CLUSTER task, which runs
    `egr split` with MMseqs2; the tables land in <outdir>/split/.
----------------------------------------------------------------------------------------
*/

include { MMSEQS_CLUSTER } from '../modules/local/mmseqs_cluster'

workflow SPLIT {

    take:
    ch_samples // channel: [ val(meta), path(decoy), path(reference) or [] ]

    main:
    ch_structures = ch_samples
        .flatMap { meta, decoy, reference -> reference ? [ decoy, reference ] : [ decoy ] }
        .unique()
        .toSortedList { a, b -> a.toString() <=> b.toString() }
        .map { files -> [ [ id: 'split' ], files ] }

    MMSEQS_CLUSTER(ch_structures)

    ch_versions_yml = MMSEQS_CLUSTER.out.versions
        .collectFile(name: 'egr-nf_software_mqc_versions.yml', storeDir: "${params.outdir}/pipeline_info", newLine: true, sort: true)

    emit:
    splits   = MMSEQS_CLUSTER.out.splits // channel: [ val(meta), path(splits.tsv) ]
    versions = ch_versions_yml           // channel: path(egr-nf_software_mqc_versions.yml)
}
