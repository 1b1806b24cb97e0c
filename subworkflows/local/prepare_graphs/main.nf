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

    ch_versions = INGEST.out.versions.first()
        .mix(MSMS_SURFACE.out.versions.first(), FEATURIZE.out.versions.first())

    emit:
    clean    = INGEST.out.clean        // channel: [ val(meta), path(<id>_clean.pdb) ]
    ingest   = INGEST.out.json         // channel: [ val(meta), path(<id>_ingest.json) ]
    failed   = INGEST.out.failed       // channel: [ val(meta), path(<id>_scores.json) ] of refused decoys
    surface  = MSMS_SURFACE.out.surface // channel: [ val(meta), path(<id>_surface.npz) ]
    graph    = FEATURIZE.out.graph     // channel: [ val(meta), path(<id>_graph.pt) ]
    versions = ch_versions             // channel: path(versions.yml)
}
