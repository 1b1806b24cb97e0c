/*
    Decoy file -> EGR graph, one task per step and decoy: INGEST (clean structure),
    MSMS_SURFACE (surface proximity), FEATURIZE (k-NN graph). The same steps as the first half
    of `egr run`, with the same files.
*/

include { INGEST       } from '../../../modules/local/ingest'
include { MSMS_SURFACE } from '../../../modules/local/msms_surface'
include { FEATURIZE    } from '../../../modules/local/featurize'

workflow PREPARE_GRAPHS {

    take:
    ch_decoys // channel: [ val(meta), path(decoy) ]

    main:
    INGEST(ch_decoys)
    MSMS_SURFACE(INGEST.out.clean)
    FEATURIZE(INGEST.out.clean.join(MSMS_SURFACE.out.surface))

    // The failure records (<id>_scores.json: reason, failed_step) of the decoys INGEST refused or
    // MSMS_SURFACE or FEATURIZE failed on (--keep-going): the summary shows each with its reason.
    ch_failed = INGEST.out.failed.mix(MSMS_SURFACE.out.failed, FEATURIZE.out.failed)

    emit:
    clean   = INGEST.out.clean         // channel: [ val(meta), path(<id>_clean.pdb) ]
    ingest  = INGEST.out.json          // channel: [ val(meta), path(<id>_ingest.json) ]
    failed  = ch_failed                // channel: [ val(meta), path(<id>_scores.json) ] of failed decoys
    surface = MSMS_SURFACE.out.surface // channel: [ val(meta), path(<id>_surface.npz) ]
    graph   = FEATURIZE.out.graph      // channel: [ val(meta), path(<id>_graph.pt) ]
}
