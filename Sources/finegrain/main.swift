print("finegrain")
