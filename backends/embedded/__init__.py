"""The embedded world: tiny tasks, the scripts that train their models from fixed seeds, and the committed
weights (``models/``). ``arith`` is the arithmetic-chain task and ``train`` trains its policies and PRM;
``digits/`` trains the image domain's diffusion model, classifier and judge."""
