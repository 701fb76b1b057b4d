"""Scene-scale inference: a trained model run over whole scenes into GeoTIFF, GeoJSON and GeoPackage outputs."""
