/*
    The comparison refiners chosen with --refiners, each on the cleaned decoy, so the report can
    put EGR side by side with them: one BASELINE_REFINE task per decoy and refiner, in the image
    the registry (egr/data/refiners.json) names for that refiner. A refiner that is not installed
    in its image records a skip (JSON with its reason) instead of a model.
*/

include { BASELINE_REFINE } from '../../../modules/local/baseline_refine'
include { refinerImages   } from '../utils_egr_pipeline'

workflow RUN_BASELINES {

    take:
    ch_clean // channel: [ val(meta), path(<id>_clean.pdb) ]
    refiners // list   : refiner names from --refiners

    main:
    def images = refinerImages()
    ch_jobs = ch_clean
        .combine(channel.fromList(refiners.findAll { name -> images.containsKey(name) }))
        .map { meta, pdb, method -> [ meta, pdb, method, images[method] ] }
    BASELINE_REFINE(ch_jobs)

    emit:
    models = BASELINE_REFINE.out.pdb.map { meta, method, pdb -> [ meta + [ model: method ], pdb ] } // channel: [ val(meta + model), path(<id>_<refiner>.pdb) ]
    json   = BASELINE_REFINE.out.json // channel: [ val(meta), path(<id>_<refiner>.json) ]
}
